"""What attn-export prints around the work: TensorFlow imported without its C++ start-up noise, a
missing `train` extra reported in one line, and a warning for a model no better than chance.

Only the command-line entry point (trainer/cli.py) uses this module; library code never changes
the environment or stderr.
"""

from __future__ import annotations

import os
import re
import sys
import tempfile
from collections import Counter
from typing import Sequence

import click

TRAIN_EXTRA = ("tensorflow", "keras", "tf2onnx", "onnx", "sacrebleu")  # top-level modules of the `train` extra
_NOISE = re.compile(
    r"All log messages before absl::InitializeLog|cudart_stub\.cc|cuInit|cuda_(platform|executor|dnn|fft|blas)|"
    r"cpu_feature_guard|To enable the following instructions|oneDNN custom operations|TF_ENABLE_ONEDNN_OPTS|"
    r"Unable to register cu(DNN|FFT|BLAS) factory|computation placer already registered|"
    r"This TensorFlow binary is optimized"
)


def import_tensorflow_quietly() -> None:
    """Import TensorFlow with its C++ log threshold at errors-off (TF_CPP_MIN_LOG_LEVEL=3, unless the
    user set it) and the import's own stderr chatter (absl pre-init lines, 'Could not find cuda
    drivers', oneDNN and CPU-feature notices) filtered out; any other line it prints is passed on."""
    if "tensorflow" in sys.modules:
        return
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    sys.stderr.flush()
    saved = os.dup(2)
    with tempfile.TemporaryFile() as capture:
        os.dup2(capture.fileno(), 2)
        try:
            import tensorflow  # noqa: F401
        finally:
            os.dup2(saved, 2)
            os.close(saved)
            capture.seek(0)
            for line in capture.read().decode("utf-8", "replace").splitlines():
                if line.strip() and not _NOISE.search(line):
                    print(line, file=sys.stderr)


def missing_train_module(error: ImportError) -> str | None:
    """The top-level name of a `train` extra module whose absence caused `error`, else None."""
    name = (getattr(error, "name", None) or "").split(".")[0]
    return name if name in TRAIN_EXTRA else None


class TrainCommand(click.Command):
    """A command that needs the `train` extra: TensorFlow is imported quietly before it runs (after
    its options are parsed, so --help stays instant)."""

    def invoke(self, ctx: click.Context):
        import_tensorflow_quietly()
        return super().invoke(ctx)


class TrainGroup(click.Group):
    """attn-export: a missing `train` extra module is one line naming the install command, exit 1."""

    command_class = TrainCommand

    def invoke(self, ctx: click.Context):
        try:
            return super().invoke(ctx)
        except ImportError as error:
            missing = missing_train_module(error)
            if missing is None:
                raise
            command = f"attn-export {ctx.invoked_subcommand}" if ctx.invoked_subcommand else "attn-export"
            raise click.ClickException(
                f"{command} needs the training extra ({missing} is not installed): pip install 'attn-onnx[train]'"
            ) from None


def chance_warning(validation_accuracy: float, labels: Sequence[int]) -> str | None:
    """A warning when validation accuracy is within 2 points of (or below) the rate of always
    answering the validation rows' majority class: such a model has learned next to nothing."""
    labels = list(labels)
    if not labels:
        return None
    label, count = Counter(labels).most_common(1)[0]
    majority = count / len(labels)
    if round(validation_accuracy - majority, 9) > 0.02:
        return None
    return (f"warning: validation accuracy {validation_accuracy:.4f} is within 2 points of always answering the "
            f"majority class {int(label)} ({majority:.4f} of the validation rows): the model has learned next to "
            f"nothing; train longer (--epochs), on more rows (--limit), or check the labels")
