"""What both commands do alike: the one error handler, the output format from -o, the summary
lines, and --engine ray (runtime.engines.ray does the work; this only maps options and reports)."""

from __future__ import annotations

import os
import sys
from collections import Counter
from contextlib import contextmanager

import click

from runtime.errors import AttnError, Interrupted, OutputError
from runtime.io.atomic import exit_code
from runtime.io.formats import output_format
from runtime.screening import status_summary


class OneLineUsageError(click.ClickException):
    """A usage error in one line, exit 2 (click's UsageError adds the usage and a hint)."""

    exit_code = 2


def interrupted(error: BaseException, output: str | None) -> None:
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


@contextmanager
def reporting(output: str | None, bars: list):
    """The one handler around a command's work: an AttnError is one line (exit 1), a signal the
    `interrupted` line (exit 128 + N), a reader that left (`| head`) exit 1 without a word. The
    progress bars in `bars` (appended to while the work runs) are closed first."""
    try:
        yield
    except AttnError as error:  # the one root of what a user can fix (runtime/errors.py)
        for bar in bars:
            bar.close()  # end the progress line before the error
        raise click.ClickException(str(error)) from None
    except (KeyboardInterrupt, Interrupted) as error:  # the output file was removed on the way out
        interrupted(error, output)
    except BrokenPipeError:  # `attn-score x.csv | head`: the reader left; not an error of ours
        sys.stderr.close()
        sys.exit(1)
    finally:
        for bar in bars:
            bar.close()


def plural(count: int, noun: str) -> str:
    """'1 row', '2,000 rows'."""
    return f"{count:,} {noun}{'' if count == 1 else 's'}"


def single_input(inputs: tuple[str, ...]) -> str:
    if len(inputs) != 1:
        raise click.UsageError(
            f"{len(inputs)} INPUTs: the local engine reads one; several files, globs or folders need --engine ray"
        )
    return inputs[0]


def choose_format(output: str | None, explicit: str | None, offered: tuple[str, ...], default: str) -> str:
    """runtime.io.formats.output_format, its refusals as one-line usage errors (exit 2)."""
    try:
        return output_format(output, explicit, offered, default)
    except OutputError as error:
        raise OneLineUsageError(str(error)) from None


def screening_notes(not_ok: int, forced: bool, truncated: int = 0, spec=None) -> None:
    """Never silently: rows the model could not read, and rows it read only in part (`spec`: the
    tokenizer's, which says which end was kept)."""
    if not_ok:
        click.echo(
            f"{plural(not_ok, 'row')} not ok (see the status column): "
            + (
                "labels forced by --force-labels"
                if forced
                else "label 'unknown', no probability (--force-labels gives the model's answer anyway)"
            ),
            err=True,
        )
    if truncated:
        kept = "last" if spec.truncation == "pre" else "first"
        click.echo(
            f"{plural(truncated, 'row')} truncated: the model read only the {kept} {spec.max_len:,} tokens "
            "(truncated_tokens says how many were dropped)",
            err=True,
        )


# === --engine ray ===
# What --engine ray does with each parameter of the two commands: it is passed to the job
# (runtime.engines.ray.score_files / translate_files, renamed by RAY_KEYWORDS), unless it is the local
# engine's alone (LOCAL_ONLY: refused in one line when given) or not the job's (NOT_FOR_THE_JOB).
# tests/test_distributed.py holds every option of both commands to this, so none is silently dropped.
LOCAL_ONLY = {
    "report_path": "--report",
    "report_rows": "--report-rows",
    "progress": "--progress",
    "keep_columns": "--keep-columns",
    "keep_all": "--keep-all",
    "plot_dir": "--plot-attention",
}
NOT_FOR_THE_JOB = ("engine", "list_models")
RAY_KEYWORDS = {"input_path": "inputs", "output": "outdir", "output_format": "fmt", "explain_k": "explain"}


def ray_job_options(ctx: click.Context) -> dict:
    """The job's keyword arguments from the command's parameters; a local-engine option given is a usage error."""
    from click.core import ParameterSource

    given = [
        flag
        for name, flag in LOCAL_ONLY.items()
        if ctx.params.get(name) not in (None, False, ())
        and ctx.get_parameter_source(name) is not ParameterSource.DEFAULT
    ]
    if given:
        raise click.UsageError(
            f"{', '.join(given)}: the local engine's option{'s' if len(given) > 1 else ''} "
            "(--engine ray writes only the folder -o OUTDIR); drop it or use the local engine"
        )
    options = {
        RAY_KEYWORDS.get(name, name): value
        for name, value in ctx.params.items()
        if name not in LOCAL_ONLY and name not in NOT_FOR_THE_JOB
    }
    options["workers"] = options["workers"] or None  # 0: the cluster's CPUs / --cpus-per-worker
    return options


def run_on_ray(run: str) -> None:
    """--engine ray: runtime.engines.ray does the work with the command's options; report one summary
    line, one error line, or the `interrupted` line of a signal (exit 128 + N, no partial folder left)."""
    options = ray_job_options(click.get_current_context())
    output, fmt = options["outdir"], options["fmt"]
    if not output:
        raise click.UsageError("--engine ray writes a folder of partitions: give it with -o OUTDIR")
    if fmt not in (None, "parquet", "csv"):
        raise click.UsageError(f"--format {fmt}: --engine ray writes parquet (default) or csv")
    from runtime.engines import ray  # Ray itself is imported only once the job starts

    verb, job = {"score_files": ("scored", ray.score_files), "translate_files": ("translated", ray.translate_files)}[
        run
    ]
    with reporting(output, []):
        done = job(**{**options, "fmt": fmt or "parquet"})
    click.echo(
        f"{verb} {plural(done['rows'], 'row')} of {plural(done['files'], 'file')} in {done['seconds']:.1f} s "
        f"({done['rows'] / done['seconds']:,.0f} rows/s; Ray up after {done['ray_start_seconds']:.1f} s) "
        f"on Ray with {plural(done['workers'], 'worker')} -> {output}/ ({ray.SUCCESS} written)"
        + (f"; {status_summary(Counter(done['statuses']))}" if done.get("statuses") else ""),
        err=True,
    )
    if done.get("statuses"):
        screening_notes(done["rows"] - done["statuses"].get("ok", 0), options.get("force_labels", False))
    for note in done.get("notes", []):  # attn-translate's notes, as the local engine gives them
        click.echo(note, err=True)
