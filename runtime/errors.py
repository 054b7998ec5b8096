"""Every error of the runtime, one meaning each, under the one root `AttnError`.

Each command catches `AttnError` once and prints its message in one line; anything else is a bug
and keeps its traceback. The old built-in bases (ValueError, RuntimeError) stay as second bases so
callers that caught those keep working. The modules that raise them re-export their names
(`runtime.bundle.BundleError` is this module's `BundleError`). The trainer's export errors live in
trainer/errors.py under the same root.
"""

from __future__ import annotations

import importlib
from types import ModuleType


class AttnError(Exception):
    """An error whose message, on one line, tells the user what is wrong and what would fix it."""


class InputError(AttnError, ValueError):
    """A problem with an input file or an input value; the message names the file, line or field."""


class OutputError(AttnError, ValueError):
    """The output cannot be written (exists as an input, is a special file, its folder is missing...)."""


class BundleError(AttnError, ValueError):
    """A bundle that cannot be used; the message names the file and what is wrong."""


class TokenizerError(AttnError, ValueError):
    """A tokenizer file or spec that cannot be used; the message names the file or the field."""


class ProviderError(AttnError, RuntimeError):
    """An explicitly requested execution provider is not available."""


class EngineError(AttnError, RuntimeError):
    """The Ray engine cannot run (cluster unreachable, a job that failed); one line for the user."""


class MissingExtraError(AttnError, ImportError):
    """An optional part is not installed; the message names the pip extra that brings it."""


class Interrupted(BaseException):
    """A termination signal arrived; raised like KeyboardInterrupt so `with` blocks clean up."""

    def __init__(self, signum: int):
        super().__init__(signum)
        self.signum = signum


def require_extra(extra: str, *modules: str, needed_by: str, what: str | None = None) -> ModuleType:
    """Import `modules` (the first is returned) or raise the one MissingExtraError, in the one wording:
    "{needed_by} needs {what}: pip install 'attn-onnx[{extra}]'" (`what`: the first module's name)."""
    imported = []
    for name in modules:
        try:
            imported.append(importlib.import_module(name))
        except ImportError:
            needs = what or modules[0].split(".")[0]
            raise MissingExtraError(f"{needed_by} needs {needs}: pip install 'attn-onnx[{extra}]'") from None
    return imported[0]
