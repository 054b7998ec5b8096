"""attn-translate: translate every sentence of a file (or stdin) with a translation bundle.

The command parses and reports; `runtime.engines.local.translate_file` (or, with --engine ray,
`runtime.engines.ray.translate_files`) does the work.
"""

from __future__ import annotations

import click

from runtime.cli.common import choose_format, plural, reporting, run_on_ray, single_input
from runtime.cli.options import (
    MAX_BEAM,
    MAX_TARGET_TOKENS,
    MAX_THREADS,
    engine_options,
    input_format_option,
    provider_option,
    quoting_option,
    shared,
    version_option,
)
from runtime.engines.local import translate_file
from runtime.io.columns import KeptColumns
from runtime.io.formats import TRANSLATE_FORMATS
from runtime.progress import Progress
from runtime.progress import wanted as progress_wanted


@click.command(context_settings={"help_option_names": ["-h", "--help"]})
@click.argument("input_path", metavar="INPUT", type=str, nargs=-1, required=True)
@version_option("attn-translate")
@shared("output")
@click.option(
    "--model", "model", default="spa-eng", show_default=True, help="Translation bundle folder or shipped short name."
)
@click.option(
    "--text-column",
    default=None,
    help="Column with the sentences (CSV/TSV/JSONL). Default: 'text'. A one-column "
    "input whose line 1 is not this name has no header: every line is a sentence.",
)
@shared("id_column")
@input_format_option(
    "Input format; auto decides by file name (.txt = one sentence per line, .parquet); stdin is a table "
    "when line 1 is a JSON object or a header naming the text column, else one sentence per line."
)
@click.option(
    "--format",
    "output_format",
    type=click.Choice(TRANSLATE_FORMATS),
    default=None,
    help="txt: one translation per line; csv, tsv, jsonl, parquet: id, source, translation, score and the "
    "diagnostics source_tokens, segments, windowed, copied, missing, oov. Default: what -o's suffix "
    "names (.txt, .csv, .tsv, .jsonl, .parquet; .gz aside), else txt. --engine ray: parquet "
    "(default) or csv.",
)
@click.option(
    "--beam-size", type=click.IntRange(1, MAX_BEAM), default=4, show_default=True, help="Beam width (1 = greedy)."
)
@click.option(
    "--max-length",
    type=click.IntRange(1, MAX_TARGET_TOKENS),
    default=None,
    help="Most target tokens per sentence (default: the bundle's).",
)
@click.option(
    "--plot-attention",
    "plot_dir",
    type=click.Path(file_okay=False),
    default=None,
    help="Write an alignment heatmap PNG per sentence into this folder "
    "(needs matplotlib: pip install 'attn-onnx[plot]').",
)
@quoting_option("Quote processing of CSV/TSV input.")
@shared("encoding")
@provider_option("onnxruntime execution provider.")
@shared("threads", "graph_optimization", "memory_arena")
@click.option(
    "--workers",
    type=click.IntRange(0, MAX_THREADS),
    default=0,
    show_default=True,
    help="Translation workers (0 = one per core on CPU, 1 on a GPU); "
    "--engine ray: Ray actors (0 = CPUs / --cpus-per-worker).",
)
@shared("progress", "keep_columns", "keep_all")
@engine_options
def translate_main(
    input_path,
    output,
    model,
    text_column,
    id_column,
    input_format,
    output_format,
    beam_size,
    max_length,
    plot_dir,
    quoting,
    encoding,
    provider,
    threads,
    graph_optimization,
    memory_arena,
    workers,
    progress,
    keep_columns,
    keep_all,
    engine,
    address,
    cpus_per_worker,
) -> None:
    """Translate every sentence of INPUT (text lines, a CSV/TSV/JSONL column, optionally .gz; '-' for stdin).

    One output row per input row, in input order. A summary line goes to stderr."""
    if engine == "ray":
        return run_on_ray("translate_files")
    input_path = single_input(input_path)
    output_format = choose_format(output, output_format, TRANSLATE_FORMATS, "txt")
    bars, plotters = [], []

    def start(translator, reader):
        if plot_dir:
            from runtime.cli.plots import attention_plotter

            plotters.append(attention_plotter(plot_dir))
        bars.append(Progress(progress_wanted(progress), reader.size, "sentences", desc="translating"))

    def chunk(rows, results, position):
        for (row_id, _), result in zip(rows, results):
            for plot in plotters:
                plot(KeptColumns.cell(row_id), result)
        bars[0].advance(len(rows), position)

    with reporting(output, bars):
        done = translate_file(
            input_path,
            output,
            model=model,
            fmt=output_format,
            text_column=text_column,
            id_column=id_column,
            beam_size=beam_size,
            max_length=max_length,
            input_format=input_format,
            quoting=quoting,
            encoding=encoding,
            provider=provider,
            threads=threads,
            graph_optimization=graph_optimization,
            memory_arena=memory_arena,
            workers=workers,
            keep_columns=keep_columns,
            keep_all=keep_all,
            return_attention=bool(plot_dir),
            on_start=start,
            on_chunk=chunk,
        )
    click.echo(
        f"translated {plural(done.rows, 'sentence')} in {done.seconds:.1f} s ({done.rows / done.seconds:,.1f}/s, "
        f"beam {beam_size}) with {done.provider} -> {output or 'stdout'}",
        err=True,
    )
    for note in done.notes:  # never silently: what the model could not read or spell, split, windowed or lacks
        click.echo(note, err=True)
