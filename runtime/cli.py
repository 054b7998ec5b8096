"""attn-score: batch-score a CSV/TSV/JSONL file (or stdin) with a sentiment bundle.

The command parses and reports; `runtime.Classifier` does the work. Every input row appears exactly
once in the output, in input order; with -o the file appears only when complete.
"""

from __future__ import annotations

import csv
import json
import os
import sys
import time
from collections import Counter, deque

import click

from runtime import catalog
from runtime.bundle import BundleError
from runtime.catalog import version
from runtime.classifier import DEFAULT_BATCH_TOKENS
from runtime.columns import TRANSLATE_COLUMNS, KeptColumns, explanation_records, plain
from runtime.diagnostics import DIAGNOSTICS, Notes, csv_cells, row_diagnostics
from runtime.errors import AttnError
from runtime.io import InputError
from runtime.output import Interrupted, OutputFile, check_output_path, exit_code
from runtime.parquet import ParquetOutput, TranslationParquet
from runtime.pipeline import DEFAULT_CHUNK_ROWS, plan_threads, score_rows, translate_rows
from runtime.plots import attention_plotter
from runtime.progress import Progress
from runtime.progress import wanted as progress_wanted
from runtime.rows import open_input, read_rows
from runtime.screening import FIELDS as SCREENING_FIELDS
from runtime.screening import count_statuses, status_summary, verdict
from runtime.session import OPTIMIZATION_LEVELS, PROVIDERS, SessionOptions

MAX_THREADS = 4 * (os.cpu_count() or 1)  # more threads or workers than this only thrash
MAX_BEAM = 32
MAX_TARGET_TOKENS = 1_000


def _finite(ctx, param, value):
    if value is not None and value != value:  # nan passes FloatRange (every comparison with it is false)
        raise click.BadParameter("nan is not a probability; give a number from 0 to 1")
    return value


def _interrupted(error: BaseException, output: str | None) -> None:
    """Ctrl-C, SIGTERM, SIGHUP: one line, exit 128 + the signal number (no -o file was left)."""
    click.echo(f"\ninterrupted{'; ' + output + ' not written' if output and output != '-' else ''}", err=True)
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except (OSError, ValueError):
            pass
    # leave now: a normal interpreter exit would tear down onnxruntime under worker threads still in
    # a batch (seen as "terminate called ..." and SIGABRT instead of 128+N)
    os._exit(exit_code(error))


def plural(count: int, noun: str) -> str:
    """'1 row', '2,000 rows'."""
    return f"{count:,} {noun}{'' if count == 1 else 's'}"


def _single_input(inputs: tuple[str, ...]) -> str:
    if len(inputs) != 1:
        raise click.UsageError(f"{len(inputs)} INPUTs: the local engine reads one; several files, globs or folders need --engine ray")
    return inputs[0]


def screening_cells(diagnostics) -> list[str]:
    """token_count, oov_share, truncated_tokens, status as CSV cells (no OOV share: empty)."""
    share = diagnostics.oov_share
    return [str(diagnostics.token_count), "" if share is None else f"{share:.4f}", str(diagnostics.truncated_tokens),
            diagnostics.status]


# -o's suffix (after an optional .gz) -> the output format it names, where the command writes that format
SUFFIX_FORMATS = {".csv": "csv", ".tsv": "tsv", ".tab": "tsv", ".jsonl": "jsonl", ".ndjson": "jsonl",
                  ".parquet": "parquet", ".pq": "parquet", ".txt": "txt"}
SCORE_FORMATS = ("csv", "tsv", "jsonl", "parquet")
TRANSLATE_FORMATS = ("txt", "csv", "tsv", "jsonl", "parquet")


class OneLineUsageError(click.ClickException):
    """A usage error in one line, exit 2 (click's UsageError adds the usage and a hint)."""

    exit_code = 2


def choose_format(output: str | None, explicit: str | None, offered: tuple[str, ...], default: str) -> str:
    """The output format: --format, else what -o's suffix names (.csv, .tsv, .jsonl, .parquet, .txt;
    a .gz after it aside), else `default`. A --format the suffix contradicts is a usage error, and so
    is a gzipped Parquet file (Parquet compresses itself)."""
    if output in (None, "-"):
        return explicit or default
    name = str(output).lower()
    implied = SUFFIX_FORMATS.get(os.path.splitext(name.removesuffix(".gz"))[1])
    implied = implied if implied in offered else None  # attn-score -o scores.txt: a CSV, as before
    if explicit and implied and explicit != implied:
        raise OneLineUsageError(f"--format {explicit} contradicts -o {output} (a {implied} file name); "
                                "drop --format or rename the output")
    chosen = explicit or implied or default
    if chosen == "parquet" and name.endswith(".gz"):
        raise OneLineUsageError(f"-o {output}: Parquet compresses itself (zstd); drop the .gz")
    return chosen


def _table_writer(handle, fmt: str):
    """A csv.writer for CSV or TSV output (TSV: quoted like CSV where a field holds a tab, quote or newline)."""
    if fmt not in ("csv", "tsv"):
        return None
    return csv.writer(handle, lineterminator="\n", delimiter="\t" if fmt == "tsv" else ",")


class _Output:
    """CSV, TSV or JSONL rows: id, [kept input columns,] probability, label[, explanation], token_count,
    oov_share, truncated_tokens, status (runtime/screening.py). The JSONL id keeps its JSON type."""

    def __init__(self, handle, fmt: str, explain: bool, kept: KeptColumns | None = None):
        self.handle, self.fmt, self.explain, self.kept = handle, fmt, explain, kept
        self.csv = _table_writer(handle, fmt)
        self.started = False

    def write(self, row_id, probability: float | None, label: str, explanation, diagnostics) -> None:
        if self.csv and not self.started:  # header with the first row: a failure before it prints nothing
            self.csv.writerow(["id"] + (self.kept.output_names if self.kept else []) + ["probability", "label"]
                              + (["explanation"] if self.explain else []) + list(SCREENING_FIELDS))
        self.started = True
        values = self.kept.pop() if self.kept else []
        if self.csv:
            cells = [KeptColumns.cell(row_id), *map(KeptColumns.cell, values)]
            cells += ["" if probability is None else f"{probability:.6f}", label]
            if self.explain:
                cells.append(json.dumps(explanation_records(explanation), ensure_ascii=False))
            self.csv.writerow(cells + screening_cells(diagnostics))
            return
        record = {"id": row_id, **dict(zip(self.kept.output_names if self.kept else [], values)),
                  "probability": None if probability is None else round(float(probability), 6), "label": label}
        if self.explain:
            record["explanation"] = explanation_records(explanation)
        self.handle.write(json.dumps(record | diagnostics.record(digits=4), ensure_ascii=False, default=plain) + "\n")


class _TranslationOutput:
    """txt (one translation per line), or CSV, TSV or JSONL rows: id, [kept input columns,] source,
    translation, score and the DIAGNOSTICS (runtime.diagnostics). The JSONL id keeps its JSON type."""

    def __init__(self, handle, fmt: str, kept: KeptColumns | None = None):
        self.handle, self.fmt, self.kept = handle, fmt, kept
        self.names = kept.output_names if kept else []
        self.csv = _table_writer(handle, fmt)
        self.started = False

    def write(self, row_id, source: str, result, diagnostics: dict) -> None:
        values = self.kept.pop() if self.kept else []
        if self.csv is not None:
            if not self.started:
                self.csv.writerow(["id", *self.names, "source", "translation", "score", *DIAGNOSTICS])
            self.csv.writerow([KeptColumns.cell(row_id), *map(KeptColumns.cell, values), source, result.text,
                               f"{result.score:.4f}", *csv_cells(diagnostics)])
        elif self.fmt == "jsonl":
            record = {"id": row_id, **dict(zip(self.names, values)), "source": source, "translation": result.text,
                      "score": round(result.score, 4), **diagnostics}
            self.handle.write(json.dumps(record, ensure_ascii=False, default=plain) + "\n")
        else:
            self.handle.write(result.text + "\n")
        self.started = True

    def close(self) -> None:
        """Nothing to finish (a Parquet writer writes its footer here)."""

    def abandon(self) -> None:
        """Nothing to drop (a Parquet writer drops its footer here)."""


# Options attn-score and attn-translate share word for word, declared once (like CTranslate2's
# declare_arguments) and applied by name where each command lists them, so --help keeps its order.
SHARED_OPTIONS = {
    "output": click.option("-o", "--output", type=click.Path(dir_okay=False), default=None,
                           help="Output file, written atomically (temp file + rename). Default: stdout. With --engine ray: "
                                "a new folder."),
    "id_column": click.option("--id-column", default=None, help="Column with row ids. Default: 'id' if present, else the row number."),
    "encoding": click.option("--encoding", default="utf-8", show_default=True, help="Text encoding of the input."),
    "threads": click.option("--threads", type=click.IntRange(0, MAX_THREADS), default=0, show_default=True,
                            help="Intra-op threads (0 = onnxruntime default)."),
    "graph_optimization": click.option("--graph-optimization", type=click.Choice(list(OPTIMIZATION_LEVELS)), default="all",
                                       show_default=True, help="onnxruntime graph optimization level."),
    "memory_arena": click.option("--memory-arena/--no-memory-arena", default=True, show_default=True,
                                 help="onnxruntime's CPU memory arena (off: lower peak memory, slower allocation)."),
    "progress": click.option("--progress/--no-progress", default=None,
                             help="Progress on stderr (default: when stderr is a terminal)."),
}


def shared(*names: str):
    """Decorator: the SHARED_OPTIONS called `names`, in that order in --help."""
    def apply(command):
        for name in reversed(names):
            command = SHARED_OPTIONS[name](command)
        return command
    return apply


_KEEP_COLUMNS = click.option("--keep-columns", default=None, metavar="A,B",
                             help="Copy these input columns to the output, after id (an output name they clash with gets "
                                  "an input_ prefix).")
_KEEP_ALL = click.option("--keep-all", is_flag=True, help="Copy every input column (but the id column) to the output.")


# === --engine ray: its options and its summary line (runtime.distributed does the work) ===
def engine_options(command):
    """--engine and the Ray engine's options, shared by both commands (--workers is the commands' own:
    with --engine ray it counts actors)."""
    for option in reversed([
        click.option("--engine", type=click.Choice(["local", "ray"]), default="local", show_default=True,
                     help="local: one process, one INPUT. ray: Ray Data over many files/globs/folders into the folder -o "
                          "(pip install 'attn-onnx[ray]'; see docs/ray.md)."),
        click.option("--address", default=None, help="With --engine ray: the Ray cluster to join (default: start a local one)."),
        click.option("--cpus-per-worker", type=click.IntRange(1), default=1, show_default=True,
                     help="With --engine ray: CPUs (and onnxruntime threads) per replica."),
    ]):
        command = option(command)
    return command


# What --engine ray does with each parameter of the two commands: it is passed to the job
# (runtime.distributed.score_files / translate_files, renamed by RAY_KEYWORDS), unless it is the local
# engine's alone (LOCAL_ONLY: refused in one line when given) or not the job's (NOT_FOR_THE_JOB).
# tests/test_distributed.py holds every option of both commands to this, so none is silently dropped.
LOCAL_ONLY = {"report_path": "--report", "report_rows": "--report-rows", "progress": "--progress",
              "keep_columns": "--keep-columns", "keep_all": "--keep-all", "plot_dir": "--plot-attention"}
NOT_FOR_THE_JOB = ("engine", "list_models")
RAY_KEYWORDS = {"input_path": "inputs", "output": "outdir", "output_format": "fmt", "explain_k": "explain"}


def ray_job_options(ctx: click.Context) -> dict:
    """The job's keyword arguments from the command's parameters; a local-engine option given is a usage error."""
    from click.core import ParameterSource

    given = [flag for name, flag in LOCAL_ONLY.items()
             if ctx.params.get(name) not in (None, False, ()) and ctx.get_parameter_source(name) is not ParameterSource.DEFAULT]
    if given:
        raise click.UsageError(f"{', '.join(given)}: the local engine's option{'s' if len(given) > 1 else ''} "
                               "(--engine ray writes only the folder -o OUTDIR); drop it or use the local engine")
    options = {RAY_KEYWORDS.get(name, name): value for name, value in ctx.params.items()
               if name not in LOCAL_ONLY and name not in NOT_FOR_THE_JOB}
    options["workers"] = options["workers"] or None  # 0: the cluster's CPUs / --cpus-per-worker
    return options


def run_on_ray(run: str) -> None:
    """--engine ray: runtime.distributed does the work with the command's options; report one summary
    line, one error line, or the `interrupted` line of a signal (exit 128 + N, no partial folder left)."""
    options = ray_job_options(click.get_current_context())
    output, output_format = options["outdir"], options["fmt"]
    if not output:
        raise click.UsageError("--engine ray writes a folder of partitions: give it with -o OUTDIR")
    if output_format not in (None, "parquet", "csv"):
        raise click.UsageError(f"--format {output_format}: --engine ray writes parquet (default) or csv")
    from runtime import distributed  # Ray itself is imported only once the job starts

    verb, job = {"score_files": ("scored", distributed.score_files),
                 "translate_files": ("translated", distributed.translate_files)}[run]
    try:
        done = job(**{**options, "fmt": output_format or "parquet"})
    except AttnError as error:
        raise click.ClickException(str(error)) from None
    except (KeyboardInterrupt, Interrupted) as error:  # the partial folder was removed on the way out
        _interrupted(error, output)
    click.echo(f"{verb} {plural(done['rows'], 'row')} of {plural(done['files'], 'file')} in {done['seconds']:.1f} s "
               f"({done['rows'] / done['seconds']:,.0f} rows/s; Ray up after {done['ray_start_seconds']:.1f} s) "
               f"on Ray with {plural(done['workers'], 'worker')} -> {output}/ ({distributed.SUCCESS} written)"
               + (f"; {status_summary(Counter(done['statuses']))}" if done.get("statuses") else ""), err=True)
    if done.get("statuses"):
        screening_notes(done["rows"] - done["statuses"].get("ok", 0), options.get("force_labels", False))
    for note in done.get("notes", []):  # attn-translate's notes, as the local engine gives them
        click.echo(note, err=True)


@click.command(context_settings={"help_option_names": ["-h", "--help"]})
@click.argument("input_path", metavar="INPUT", type=str, nargs=-1, required=False)
@click.version_option(version(), "--version", prog_name="attn-score", message="%(prog)s (attn-onnx) %(version)s")
@click.option("--list-models", is_flag=True, help="List the shipped models (and the --model folder) with task, languages, "
              "accuracy, precision and size, then exit.")
@shared("output")
@click.option("--model", "model", default=None,
              help="Bundle folder or shipped short name (imdb). Default: the shipped IMDB bundle.")
@click.option("--text-column", default=None, help="Column with the text. Default: 'text'. A one-column input whose line 1 "
              "is not this name has no header: every line is a text.")
@shared("id_column")
@click.option("--threshold", type=click.FloatRange(0, 1), default=0.5, show_default=True, callback=_finite,
              help="Probability at or above which a row gets the positive label.")
@click.option("--explain", "explain_k", type=click.IntRange(0), default=0, show_default=True,
              help="Add the K most attended tokens with their weights.")
@click.option("--format", "output_format", type=click.Choice(SCORE_FORMATS), default=None,
              help="Output format: csv, tsv, jsonl or parquet (needs -o and pip install 'attn-onnx[parquet]'); "
                   "default: what -o's suffix names (.csv, .tsv, .jsonl, .parquet; .gz aside), else csv. "
                   "--engine ray: parquet (default) or csv.")
@click.option("--input-format", type=click.Choice(["auto", "csv", "tsv", "jsonl", "lines", "parquet"]), default="auto", show_default=True,
              help="Input format; auto decides by file name (.csv, .tsv, .jsonl, .txt = lines, optionally .gz; .parquet); stdin is a "
                   "table when line 1 is a JSON object or a header naming the text column, else one text per line.")
@click.option("--quoting", type=click.Choice(["auto", "csv", "none"]), default="auto", show_default=True,
              help="Quote processing: csv (standard quoting), none (literal quotes); auto = csv for CSV, none for TSV.")
@shared("encoding")
@click.option("--provider", type=click.Choice(["auto", *PROVIDERS]), default="auto", show_default=True,
              help="onnxruntime execution provider; an explicit one that is unavailable is an error.")
@shared("threads", "graph_optimization", "memory_arena")
@click.option("--batch-tokens", type=click.IntRange(1), default=DEFAULT_BATCH_TOKENS, show_default=True,
              help="Token budget per batch (rows x padded length).")
@click.option("--workers", type=click.IntRange(0, MAX_THREADS), default=0, show_default=True,
              help="Inference workers (0 = one per core on CPU, 1 on a GPU); reading and tokenizing run beside them. "
                   "--engine ray: Ray actors (0 = the cluster's CPUs / --cpus-per-worker).")
@click.option("--chunk-rows", type=click.IntRange(1), default=DEFAULT_CHUNK_ROWS, show_default=True,
              help="Rows read, tokenized and length-sorted together; memory stays within (workers + 4) chunks.")
@click.option("--report", "report_path", type=click.Path(dir_okay=False), default=None,
              help="Also write a self-contained HTML report: words shaded by attention, most attended words, "
                   "histogram (needs pip install 'attn-onnx[report]').")
@click.option("--report-rows", type=click.IntRange(1), default=200, show_default=True,
              help="Rows shown in the report: a uniform random sample (seed 0) when the input has more.")
@shared("progress")
@_KEEP_COLUMNS
@_KEEP_ALL
@click.option("--force-labels", is_flag=True, help="Give every row the model's probability and label, also rows whose "
              "status is not ok (empty, unknown, other-script), which otherwise get label 'unknown' and no probability.")
@engine_options
def main(input_path, list_models, output, model, text_column, id_column, threshold, explain_k, output_format, input_format,
         quoting, encoding, provider, threads, graph_optimization, memory_arena, batch_tokens, workers, chunk_rows, report_path,
         report_rows, progress, keep_columns, keep_all, force_labels, engine, address, cpus_per_worker) -> None:
    """Score sentiment for every row of INPUT (CSV, TSV or JSONL, optionally .gz; '-' for stdin).

    Writes one row per input row, in input order: id, probability, label (and explanation with
    --explain), then token_count, oov_share, truncated_tokens and status. A row whose status is not
    ok gets label 'unknown' and no probability unless --force-labels. A summary line (rows, rows/s,
    provider, rows per status) goes to stderr."""
    import runtime

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
    input_path = _single_input(input_path)
    output_format = choose_format(output, output_format, SCORE_FORMATS, "csv")

    started = time.perf_counter()
    count, truncated, statuses, bar = 0, 0, Counter(), None
    try:
        workers, threads = plan_threads(workers, threads, provider)
        options = SessionOptions(threads=threads, optimization=graph_optimization, memory_arena=memory_arena)
        classifier = runtime.load(model, provider=provider, batch_tokens=batch_tokens, session_options=options)
        if not isinstance(classifier, runtime.Classifier):
            raise BundleError(f"{classifier.bundle.path}: task is {classifier.bundle.task!r}; attn-score needs a "
                              "sentiment bundle (use attn-translate for translation)")
        reader, text_column, id_column = open_input(input_path, input_format, encoding, quoting, text_column, id_column)
        kept = KeptColumns.choose(reader.name, reader.columns, keep_columns, keep_all, id_column)
        report = _report(classifier, report_path, report_rows, input_path, output) if report_path else None
        bar = Progress(progress_wanted(progress), reader.size, "rows", desc="scoring")
        if output_format == "parquet" and output in (None, "-"):
            raise InputError("--format parquet writes a file: pass -o FILE.parquet")
        with OutputFile(output, inputs=[input_path]) as handle:
            if output_format == "parquet":
                out = ParquetOutput(handle.buffer, explain_k > 0, kept, getattr(reader, "arrow_types", None))
            else:
                out = _Output(handle, output_format, explain_k > 0, kept)
            rows = read_rows(reader, text_column, id_column, kept, typed_ids=True)
            scored = score_rows(classifier, rows, explain_k, workers=workers,
                                chunk_rows=chunk_rows, position=reader.position, want_attention=report is not None)
            try:
                for part in scored:
                    for (row_id, _), probability, explanation, row in zip(part.chunk, part.probabilities,
                                                                          part.explanations, part.diagnostics):
                        out.write(row_id, *verdict(probability, row, classifier.labels, threshold, force_labels),
                                  explanation, row)
                    count += len(part.chunk)
                    count_statuses(part.diagnostics, statuses)
                    truncated += sum(row.truncated_tokens > 0 for row in part.diagnostics)
                    bar.advance(len(part.chunk), part.position)
                    if report is not None:
                        report.add(part.chunk, part.probabilities, part.attention, threshold)
            except BaseException:
                if output_format == "parquet":
                    out.abandon()  # the temporary file is discarded: no footer into a closed file later
                raise
            if output_format == "parquet":
                out.close()  # the footer, before the file is renamed into place
        if report is not None:
            report.write(report_path, reader.name)
    except AttnError as error:  # the one root of what a user can fix (runtime/errors.py)
        if bar is not None:
            bar.close()  # end the progress line before the error
        raise click.ClickException(str(error)) from None
    except (KeyboardInterrupt, Interrupted) as error:  # the output file was removed on the way out
        _interrupted(error, output)
    except BrokenPipeError:  # `attn-score x.csv | head`: the reader left; not an error of ours
        sys.stderr.close()
        sys.exit(1)
    finally:
        if bar is not None:
            bar.close()
    elapsed = time.perf_counter() - started
    target = output or "stdout"
    click.echo(f"scored {plural(count, 'row')} in {elapsed:.1f} s ({count / elapsed:,.0f} rows/s) with {classifier.provider} -> {target}; "
               f"{status_summary(statuses)}", err=True)
    screening_notes(count - statuses["ok"], force_labels, truncated, classifier.tokenizer.spec)


def screening_notes(not_ok: int, forced: bool, truncated: int = 0, spec=None) -> None:
    """Never silently: rows the model could not read, and rows it read only in part (`spec`: the
    tokenizer's, which says which end was kept)."""
    if not_ok:
        click.echo(f"{plural(not_ok, 'row')} not ok (see the status column): "
                   + ("labels forced by --force-labels" if forced else "label 'unknown', no probability "
                      "(--force-labels gives the model's answer anyway)"), err=True)
    if truncated:
        kept = "last" if spec.truncation == "pre" else "first"
        click.echo(f"{plural(truncated, 'row')} truncated: the model read only the {kept} {spec.max_len:,} tokens "
                   "(truncated_tokens says how many were dropped)", err=True)


def _report(classifier, path: str, rows: int, input_path: str, output: str | None):
    """The report collector; its file may be neither the input nor the output."""
    from pathlib import Path

    from runtime.report import Report

    target = Path(path).resolve()
    if (input_path != "-" and target == Path(input_path).resolve()) or (output not in (None, "-") and target == Path(output).resolve()):
        raise InputError(f"{path}: --report would overwrite the {'input' if target == Path(input_path).resolve() else 'output'}; pick another name")
    check_output_path(path, [input_path])  # a hard link to the input, a missing folder: before any row is read
    return Report(classifier, rows=rows)


# === attn-translate ===
@click.command(context_settings={"help_option_names": ["-h", "--help"]})
@click.argument("input_path", metavar="INPUT", type=str, nargs=-1, required=True)
@click.version_option(version(), "--version", prog_name="attn-translate", message="%(prog)s (attn-onnx) %(version)s")
@shared("output")
@click.option("--model", "model", default="spa-eng", show_default=True, help="Translation bundle folder or shipped short name.")
@click.option("--text-column", default=None, help="Column with the sentences (CSV/TSV/JSONL). Default: 'text'. A one-column "
              "input whose line 1 is not this name has no header: every line is a sentence.")
@shared("id_column")
@click.option("--input-format", type=click.Choice(["auto", "csv", "tsv", "jsonl", "lines", "parquet"]), default="auto", show_default=True,
              help="Input format; auto decides by file name (.txt = one sentence per line, .parquet); stdin is a table when line 1 "
                   "is a JSON object or a header naming the text column, else one sentence per line.")
@click.option("--format", "output_format", type=click.Choice(TRANSLATE_FORMATS), default=None,
              help="txt: one translation per line; csv, tsv, jsonl, parquet: id, source, translation, score and the "
                   "diagnostics source_tokens, segments, windowed, copied, missing, oov. Default: what -o's suffix "
                   "names (.txt, .csv, .tsv, .jsonl, .parquet; .gz aside), else txt. --engine ray: parquet "
                   "(default) or csv.")
@click.option("--beam-size", type=click.IntRange(1, MAX_BEAM), default=4, show_default=True, help="Beam width (1 = greedy).")
@click.option("--max-length", type=click.IntRange(1, MAX_TARGET_TOKENS), default=None, help="Most target tokens per sentence (default: the bundle's).")
@click.option("--plot-attention", "plot_dir", type=click.Path(file_okay=False), default=None,
              help="Write an alignment heatmap PNG per sentence into this folder (needs matplotlib: pip install 'attn-onnx[plot]').")
@click.option("--quoting", type=click.Choice(["auto", "csv", "none"]), default="auto", show_default=True, help="Quote processing of CSV/TSV input.")
@shared("encoding")
@click.option("--provider", type=click.Choice(["auto", *PROVIDERS]), default="auto", show_default=True, help="onnxruntime execution provider.")
@shared("threads", "graph_optimization", "memory_arena")
@click.option("--workers", type=click.IntRange(0, MAX_THREADS), default=0, show_default=True,
              help="Translation workers (0 = one per core on CPU, 1 on a GPU); --engine ray: Ray actors (0 = CPUs / --cpus-per-worker).")
@shared("progress")
@_KEEP_COLUMNS
@_KEEP_ALL
@engine_options
def translate_main(input_path, output, model, text_column, id_column, input_format, output_format, beam_size, max_length,
                   plot_dir, quoting, encoding, provider, threads, graph_optimization, memory_arena, workers, progress,
                   keep_columns, keep_all, engine, address, cpus_per_worker) -> None:
    """Translate every sentence of INPUT (text lines, a CSV/TSV/JSONL column, optionally .gz; '-' for stdin).

    One output row per input row, in input order. A summary line goes to stderr."""
    import runtime

    if engine == "ray":
        return run_on_ray("translate_files")
    input_path = _single_input(input_path)
    output_format = choose_format(output, output_format, TRANSLATE_FORMATS, "txt")

    started, count, notes, bar = time.perf_counter(), 0, Notes(), None
    try:
        workers, threads = plan_threads(workers, threads, provider)
        options = SessionOptions(threads=threads, optimization=graph_optimization, memory_arena=memory_arena)
        translator = runtime.load(model, provider=provider, session_options=options)
        if not isinstance(translator, runtime.Translator):
            raise BundleError(f"{translator.bundle.path}: task is {translator.bundle.task!r}; attn-translate needs a translation bundle")
        reader, text_column, id_column = open_input(input_path, input_format, encoding, quoting, text_column, id_column)
        kept = KeptColumns.choose(reader.name, reader.columns, keep_columns, keep_all, id_column,
                                  TRANSLATE_COLUMNS + DIAGNOSTICS)
        if kept is not None and output_format == "txt":
            raise InputError("--keep-columns/--keep-all need --format csv, tsv, jsonl or parquet "
                             "(txt is one translation per line)")
        if output_format == "parquet" and output in (None, "-"):
            raise InputError("--format parquet writes a file: pass -o FILE.parquet")
        plotter = attention_plotter(plot_dir) if plot_dir else None
        bar = Progress(progress_wanted(progress), reader.size, "sentences", desc="translating")
        lines: deque = deque()  # each row's line number, for the notes (pushed by the reader, popped here)
        with OutputFile(output, inputs=[input_path]) as handle:
            if output_format == "parquet":
                out = TranslationParquet(handle.buffer, kept, getattr(reader, "arrow_types", None))
            else:
                out = _TranslationOutput(handle, output_format, kept)
            rows = read_rows(reader, text_column, id_column, kept, lines, typed_ids=True)
            translated = translate_rows(translator, rows, workers=workers, chunk_rows=128, position=reader.position,
                                        beam_size=beam_size, max_length=max_length,
                                        return_attention=plotter is not None)
            try:
                for chunk, results, position in translated:
                    for (row_id, text), result in zip(chunk, results):
                        diagnostics = row_diagnostics(result)
                        out.write(row_id, text, result, diagnostics)
                        if plotter is not None:
                            plotter(KeptColumns.cell(row_id), result)
                        count += 1
                        notes.add(str(lines.popleft()), diagnostics)
                    bar.advance(len(chunk), position)
            except BaseException:
                out.abandon()  # a Parquet file's temporary file is discarded: no footer into a closed file later
                raise
            out.close()  # a Parquet file's footer, before the file is renamed into place
    except AttnError as error:  # the one root of what a user can fix (runtime/errors.py)
        if bar is not None:
            bar.close()
        raise click.ClickException(str(error)) from None
    except (KeyboardInterrupt, Interrupted) as error:
        _interrupted(error, output)
    except BrokenPipeError:
        sys.stderr.close()
        sys.exit(1)
    finally:
        if bar is not None:
            bar.close()
    elapsed = time.perf_counter() - started
    click.echo(f"translated {plural(count, 'sentence')} in {elapsed:.1f} s ({count / elapsed:,.1f}/s, beam {beam_size}) "
               f"with {translator.provider} -> {output or 'stdout'}", err=True)
    for note in notes.lines():  # never silently: what the model could not read or spell, split, windowed or lacks
        click.echo(note, err=True)


if __name__ == "__main__":
    main()
