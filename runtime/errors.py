"""The one error root of attn-onnx: every error a command reports in one line derives from `AttnError`.

runtime: InputError (runtime.io), BundleError (runtime.bundle), ProviderError (runtime.session),
OutputError (runtime.output); trainer: ExportError and below it ParityError, QuantizationError
(trainer.converter). Each command catches `AttnError` once and prints its message; anything else
is a bug and keeps its traceback. The old built-in bases (ValueError, RuntimeError) stay as second
bases so callers that caught those keep working.
"""


class AttnError(Exception):
    """An error whose message, on one line, tells the user what is wrong and what would fix it."""
