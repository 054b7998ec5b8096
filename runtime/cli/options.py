"""Every option of attn-score and attn-translate that they share, declared once (like CTranslate2's
declare_arguments) and applied by name where each command lists them, so --help keeps its order."""

from __future__ import annotations

import click

from runtime.catalog import version
from runtime.models.translator import MAX_BEAM, MAX_TARGET_TOKENS
from runtime.session import MAX_THREADS, OPTIMIZATION_LEVELS, PROVIDERS

__all__ = ["MAX_BEAM", "MAX_TARGET_TOKENS", "MAX_THREADS", "SHARED_OPTIONS", "shared", "engine_options"]
INPUT_FORMATS = ["auto", "csv", "tsv", "jsonl", "lines", "parquet"]


def finite(ctx, param, value):
    if value is not None and value != value:  # nan passes FloatRange (every comparison with it is false)
        raise click.BadParameter("nan is not a probability; give a number from 0 to 1")
    return value


def version_option(prog_name: str):
    return click.version_option(version(), "--version", prog_name=prog_name, message="%(prog)s (attn-onnx) %(version)s")


SHARED_OPTIONS = {
    "output": click.option(
        "-o",
        "--output",
        type=click.Path(dir_okay=False),
        default=None,
        help="Output file, written atomically (temp file + rename). Default: stdout. With --engine ray: a new folder.",
    ),
    "id_column": click.option(
        "--id-column", default=None, help="Column with row ids. Default: 'id' if present, else the row number."
    ),
    "encoding": click.option("--encoding", default="utf-8", show_default=True, help="Text encoding of the input."),
    "threads": click.option(
        "--threads",
        type=click.IntRange(0, MAX_THREADS),
        default=0,
        show_default=True,
        help="Intra-op threads (0 = onnxruntime default).",
    ),
    "graph_optimization": click.option(
        "--graph-optimization",
        type=click.Choice(list(OPTIMIZATION_LEVELS)),
        default="all",
        show_default=True,
        help="onnxruntime graph optimization level.",
    ),
    "memory_arena": click.option(
        "--memory-arena/--no-memory-arena",
        default=True,
        show_default=True,
        help="onnxruntime's CPU memory arena (off: lower peak memory, slower allocation).",
    ),
    "progress": click.option(
        "--progress/--no-progress", default=None, help="Progress on stderr (default: when stderr is a terminal)."
    ),
    "keep_columns": click.option(
        "--keep-columns",
        default=None,
        metavar="A,B",
        help="Copy these input columns to the output, after id (an output name they clash with gets an input_ prefix).",
    ),
    "keep_all": click.option(
        "--keep-all", is_flag=True, help="Copy every input column (but the id column) to the output."
    ),
}


def shared(*names: str):
    """Decorator: the SHARED_OPTIONS called `names`, in that order in --help."""

    def apply(command):
        for name in reversed(names):
            command = SHARED_OPTIONS[name](command)
        return command

    return apply


def input_format_option(help: str):
    return click.option(
        "--input-format", type=click.Choice(INPUT_FORMATS), default="auto", show_default=True, help=help
    )


def quoting_option(help: str):
    return click.option(
        "--quoting", type=click.Choice(["auto", "csv", "none"]), default="auto", show_default=True, help=help
    )


def provider_option(help: str):
    return click.option(
        "--provider", type=click.Choice(["auto", *PROVIDERS]), default="auto", show_default=True, help=help
    )


def engine_options(command):
    """--engine and the Ray engine's options, shared by both commands (--workers is the commands' own:
    with --engine ray it counts actors)."""
    for option in reversed(
        [
            click.option(
                "--engine",
                type=click.Choice(["local", "ray"]),
                default="local",
                show_default=True,
                help="local: one process, one INPUT. ray: Ray Data over many files/globs/folders into the folder -o "
                "(pip install 'attn-onnx[ray]'; see docs/ray.md).",
            ),
            click.option(
                "--address",
                default=None,
                help="With --engine ray: the Ray cluster to join (default: start a local one).",
            ),
            click.option(
                "--cpus-per-worker",
                type=click.IntRange(1),
                default=1,
                show_default=True,
                help="With --engine ray: CPUs (and onnxruntime threads) per replica.",
            ),
        ]
    ):
        command = option(command)
    return command
