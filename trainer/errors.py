"""Every error of the trainer, under runtime's one root `AttnError` (runtime/errors.py): the export
errors (ExportError and below it the parity, decode, quantization and text-graph errors) and
CalibrationError. The modules that raise them re-export their names.
"""

from __future__ import annotations

from runtime.errors import AttnError


class ExportError(AttnError, RuntimeError):
    """The model cannot be exported (unsupported layer, bad graph structure, existing folder)."""


class ParityError(ExportError):
    """ONNX and Keras disagree; the message names every failing output."""


class ParityShapeError(ParityError):
    """An ONNX output has another shape than Keras'."""


class ParityToleranceError(ParityError):
    """An ONNX output differs from Keras' beyond the tolerance (or is not finite)."""


class DecodeMismatchError(ParityError):
    """A decode through the exported graphs gives other tokens than the Keras decode."""


class QuantizationError(ExportError):
    """A quantized graph loses more accuracy than allowed; the message gives both figures."""


class TextGraphError(ExportError):
    """The bundle's tokenizer cannot be compiled into a graph; the message names the feature."""


class CalibrationError(AttnError, ValueError):
    """Calibration cannot run (one label only in the validation rows); one line for the user."""
