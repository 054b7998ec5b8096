"""attn-score: batch-score a CSV/TSV/JSONL/Parquet file (or stdin) with a sentiment bundle.

The command parses and reports; `runtime.engines.local.score_file` (or, with --engine ray,
`runtime.engines.ray.score_files`) does the work. Every input row appears exactly once in the
output, in input order; with -o the file appears only when complete.
"""

from __future__ import annotations

import click

from runtime import catalog
from runtime.cli.common import choose_format, plural, reporting, run_on_ray, screening_notes, single_input
from runtime.cli.options import (
    MAX_THREADS,
    engine_options,
    finite,
    input_format_option,
    provider_option,
    quoting_option,
    shared,
    version_option,
)
from runtime.engines.local import DEFAULT_CHUNK_ROWS, score_file
from runtime.errors import BundleError, OutputError
from runtime.io.atomic import check_output_path
from runtime.io.formats import SCORE_FORMATS
from runtime.models.classifier import DEFAULT_BATCH_TOKENS
from runtime.progress import Progress
from runtime.progress import wanted as progress_wanted
from runtime.screening import status_summary


@click.command(context_settings={"help_option_names": ["-h", "--help"]})
@click.argument("input_path", metavar="INPUT", type=str, nargs=-1, required=False)
@version_option("attn-score")
@click.option(
    "--list-models",
    is_flag=True,
    help="List the shipped models (and the --model folder) with task, languages, "
    "accuracy, precision and size, then exit.",
)
@shared("output")
@click.option(
    "--model",
    "model",
    default=None,
    help="Bundle folder or shipped short name (imdb). Default: the shipped IMDB bundle.",
)
@click.option(
    "--text-column",
    default=None,
    help="Column with the text. Default: 'text'. A one-column input whose line 1 "
    "is not this name has no header: every line is a text.",
)
@shared("id_column")
@click.option(
    "--threshold",
    type=click.FloatRange(0, 1),
    default=0.5,
    show_default=True,
    callback=finite,
    help="Probability at or above which a row gets the positive label.",
)
@click.option(
    "--explain",
    "explain_k",
    type=click.IntRange(0),
    default=0,
    show_default=True,
    help="Add the K most attended tokens with their weights.",
)
@click.option(
    "--format",
    "output_format",
    type=click.Choice(SCORE_FORMATS),
    default=None,
    help="Output format: csv, tsv, jsonl or parquet (needs -o and pip install 'attn-onnx[parquet]'); "
    "default: what -o's suffix names (.csv, .tsv, .jsonl, .parquet; .gz aside), else csv. "
    "--engine ray: parquet (default) or csv.",
)
@input_format_option(
    "Input format; auto decides by file name (.csv, .tsv, .jsonl, .txt = lines, optionally .gz; .parquet); "
    "stdin is a table when line 1 is a JSON object or a header naming the text column, else one text per line."
)
@quoting_option("Quote processing: csv (standard quoting), none (literal quotes); auto = csv for CSV, none for TSV.")
@shared("encoding")
@provider_option("onnxruntime execution provider; an explicit one that is unavailable is an error.")
@shared("threads", "graph_optimization", "memory_arena")
@click.option(
    "--batch-tokens",
    type=click.IntRange(1),
    default=DEFAULT_BATCH_TOKENS,
    show_default=True,
    help="Token budget per batch (rows x padded length).",
)
@click.option(
    "--workers",
    type=click.IntRange(0, MAX_THREADS),
    default=0,
    show_default=True,
    help="Inference workers (0 = one per core on CPU, 1 on a GPU); reading and tokenizing run beside them. "
    "--engine ray: Ray actors (0 = the cluster's CPUs / --cpus-per-worker).",
)
@click.option(
    "--chunk-rows",
    type=click.IntRange(1),
    default=DEFAULT_CHUNK_ROWS,
    show_default=True,
    help="Rows read, tokenized and length-sorted together; memory stays within (workers + 4) chunks.",
)
@click.option(
    "--report",
    "report_path",
    type=click.Path(dir_okay=False),
    default=None,
    help="Also write a self-contained HTML report: words shaded by attention, most attended words, "
    "histogram (needs pip install 'attn-onnx[report]').",
)
@click.option(
    "--report-rows",
    type=click.IntRange(1),
    default=200,
    show_default=True,
    help="Rows shown in the report: a uniform random sample (seed 0) when the input has more.",
)
@shared("progress", "keep_columns", "keep_all")
@click.option(
    "--force-labels",
    is_flag=True,
    help="Give every row the model's probability and label, also rows whose "
    "status is not ok (empty, unknown, other-script), which otherwise get label 'unknown' and no probability.",
)
@engine_options
def main(
    input_path,
    list_models,
    output,
    model,
    text_column,
    id_column,
    threshold,
    explain_k,
    output_format,
    input_format,
    quoting,
    encoding,
    provider,
    threads,
    graph_optimization,
    memory_arena,
    batch_tokens,
    workers,
    chunk_rows,
    report_path,
    report_rows,
    progress,
    keep_columns,
    keep_all,
    force_labels,
    engine,
    address,
    cpus_per_worker,
) -> None:
    """Score sentiment for every row of INPUT (CSV, TSV or JSONL, optionally .gz; '-' for stdin).

    Writes one row per input row, in input order: id, probability, label (and explanation with
    --explain), then token_count, oov_share, truncated_tokens and status. A row whose status is not
    ok gets label 'unknown' and no probability unless --force-labels. A summary line (rows, rows/s,
    provider, rows per status) goes to stderr."""
    if list_models:
        try:
            click.echo(catalog.table(catalog.listing(model)))
        except BundleError as error:
            raise click.ClickException(str(error)) from None
        return
    if not input_path:
        raise click.UsageError("Missing argument 'INPUT...'.")
    if engine == "ray":
        return run_on_ray("score_files")
    input_path = single_input(input_path)
    output_format = choose_format(output, output_format, SCORE_FORMATS, "csv")
    bars, report = [], []

    def start(classifier, reader):
        if report_path:
            report.append(_report(classifier, report_path, report_rows, input_path, output))
        bars.append(Progress(progress_wanted(progress), reader.size, "rows", desc="scoring"))

    def chunk(part):
        bars[0].advance(len(part.chunk), part.position)
        if report:
            report[0].add(part.chunk, part.probabilities, part.attention, threshold)

    with reporting(output, bars):
        done = score_file(
            input_path,
            output,
            model=model,
            fmt=output_format,
            text_column=text_column,
            id_column=id_column,
            threshold=threshold,
            explain=explain_k,
            input_format=input_format,
            quoting=quoting,
            encoding=encoding,
            provider=provider,
            threads=threads,
            graph_optimization=graph_optimization,
            memory_arena=memory_arena,
            batch_tokens=batch_tokens,
            workers=workers,
            chunk_rows=chunk_rows,
            keep_columns=keep_columns,
            keep_all=keep_all,
            force_labels=force_labels,
            want_attention=bool(report_path),
            on_start=start,
            on_chunk=chunk,
        )
        if report:
            report[0].write(report_path, done.input_name)
    click.echo(
        f"scored {plural(done.rows, 'row')} in {done.seconds:.1f} s ({done.rows / done.seconds:,.0f} rows/s) with "
        f"{done.provider} -> {output or 'stdout'}; {status_summary(done.statuses)}",
        err=True,
    )
    screening_notes(done.rows - done.statuses["ok"], force_labels, done.truncated, done.spec)


def _report(classifier, path: str, rows: int, input_path: str, output: str | None):
    """The report collector; its file may be neither the input nor the output."""
    from pathlib import Path

    from runtime.cli.report import Report

    target = Path(path).resolve()
    if (input_path != "-" and target == Path(input_path).resolve()) or (
        output not in (None, "-") and target == Path(output).resolve()
    ):
        raise OutputError(
            f"{path}: --report would overwrite the {'input' if target == Path(input_path).resolve() else 'output'}; "
            "pick another name"
        )
    check_output_path(path, [input_path])  # a hard link to the input, a missing folder: before any row is read
    return Report(classifier, rows=rows)
