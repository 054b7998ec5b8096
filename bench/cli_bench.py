"""`python -m bench cli`: attn-score end to end against plain in-memory predict, in one run, on the same file.

    python -m bench cli                      # the 25,000-review IMDB test file
    python -m bench cli --limit 5000         # its first 5,000 reviews (quicker)

Variants, each in its own process (its CPU time and peak RSS are its own):
  in-memory      texts read first (not timed), then one `Classifier.predict(texts)` (default session)
  cli            `attn-score FILE -o out.csv` (defaults: the streaming pipeline)
  cli --explain 5
  cli 1 worker   `--workers 1`: the old one-session layout (onnxruntime's own intra-op threads), for
                 the thread-default comparison
rows/s of the CLI is from its own summary line (model load, reading, parsing, tokenizing, scoring
and writing; not interpreter start-up, which is shown separately as wall s). CPU = (user + sys) /
wall of the timed part. The load average before and after says how busy the machine was.
"""

from __future__ import annotations

import gzip
import json
import os
import re
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import click

GOAL_RATIO, GOAL_RATE = 0.90, 1600


def _load() -> str:
    try:
        return " ".join(open("/proc/loadavg").read().split()[:3])
    except OSError:
        return "n/a"


def _run(command: list[str], out_dir: Path, env: dict) -> tuple[int, float, resource.struct_rusage, str, str]:
    """(exit code, wall s, the child's own rusage, stdout, stderr)."""
    stdout, stderr = out_dir / "stdout", out_dir / "stderr"
    with open(stdout, "wb") as out, open(stderr, "wb") as err:
        started = time.perf_counter()
        process = subprocess.Popen(command, stdout=out, stderr=err, cwd=out_dir, env=env)
        _, status, usage = os.wait4(process.pid, 0)
        wall = time.perf_counter() - started
        process.returncode = os.waitstatus_to_exitcode(status)
    return process.returncode, wall, usage, stdout.read_text(errors="replace"), stderr.read_text(errors="replace")


def _in_memory_child(model: str, data: str) -> None:
    """Child process: read every text, then time one predict over all of them; print JSON."""
    import runtime
    from runtime.io.tables import TableReader

    texts = [record["text"] for _, record in TableReader(data).records()]
    classifier = runtime.load(model)
    classifier.predict(texts[:64])  # warm-up: first-run allocations
    before, started = resource.getrusage(resource.RUSAGE_SELF), time.perf_counter()
    classifier.predict(texts)
    wall = time.perf_counter() - started
    after = resource.getrusage(resource.RUSAGE_SELF)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    print(json.dumps({"rows": len(texts), "seconds": wall, "cpu": cpu / wall, "peak_rss_mb": after.ru_maxrss / 1024}))


@click.command("cli")
@click.option("--model", default="imdb", show_default=True, help="Bundle folder or shipped short name.")
@click.option("--data", type=click.Path(exists=True, dir_okay=False),
              default="../shared/datasets/imdb/test.csv.gz", show_default=True)
@click.option("--limit", type=click.IntRange(1), default=None,
              help="Only the first N rows (written to a temporary .csv.gz).")
@click.option("--skip-one-worker", is_flag=True, help="Leave out the --workers 1 comparison.")
@click.option("--json-out", type=click.Path(dir_okay=False), default=None, help="Also write the figures as JSON.")
def cli(model, data, limit, skip_one_worker, json_out):
    """attn-score end to end vs in-memory Classifier.predict on the same file: rows/s, CPU, peak RSS."""
    data = str(Path(data).resolve())
    if model and Path(model).exists():
        model = str(Path(model).resolve())
    env = {**os.environ,
           "PYTHONPATH": os.pathsep.join([str(Path(__file__).resolve().parents[1]), os.environ.get("PYTHONPATH", "")])}
    with tempfile.TemporaryDirectory(prefix="bench-cli-") as work:
        work = Path(work)
        if limit:
            source = work / "input.csv.gz"
            with (gzip.open(data, "rt", encoding="utf-8", newline="") as full,
                  gzip.open(source, "wt", encoding="utf-8", newline="") as part):
                import csv

                reader, writer = csv.reader(full), csv.writer(part)
                for index, row in enumerate(reader):
                    if index > limit:
                        break
                    writer.writerow(row)
            data = str(source)
        load_before = _load()
        click.echo(f"data: {data}{f' (first {limit:,} rows)' if limit else ''}; model: {model}; load average before: "
                   f"{load_before}", err=True)
        results = {}

        code, wall, usage, stdout, stderr = _run([sys.executable, "-m", "bench.cli_bench", "--child-in-memory",
                                                  model, data], work, env)
        if code:
            raise click.ClickException(f"in-memory run failed: {stderr.strip().splitlines()[-1:]}")
        child = json.loads(stdout.strip().splitlines()[-1])
        rows = child["rows"]
        results["in-memory predict"] = {"rows_s": rows / child["seconds"], "wall_s": wall, "cpu": child["cpu"],
                                        "peak_rss_mb": child["peak_rss_mb"]}

        variants = {"attn-score -o out.csv": [], "attn-score --explain 5": ["--explain", "5"]}
        if not skip_one_worker:
            variants["attn-score --workers 1"] = ["--workers", "1"]
        for name, extra in variants.items():
            command = [sys.executable, "-m", "runtime.cli", data, "--model", model, "-o", str(work / "out.csv"),
                       "--no-progress", *extra]
            code, wall, usage, _, stderr = _run(command, work, env)
            if code:
                raise click.ClickException(f"{name} failed: {stderr.strip().splitlines()[-1:]}")
            summary = re.search(r"scored ([\d,]+) rows? in ([\d.]+) s", stderr)
            scored, seconds = int(summary.group(1).replace(",", "")), float(summary.group(2))
            if scored != rows:
                raise click.ClickException(f"{name} scored {scored} rows, in-memory {rows}")
            cpu_s = usage.ru_utime + usage.ru_stime
            results[name] = {"rows_s": rows / seconds, "wall_s": wall, "cpu": cpu_s / wall,
                             "peak_rss_mb": usage.ru_maxrss / 1024}
        load_after = _load()

    base = results["in-memory predict"]["rows_s"]
    click.echo(f"{rows:,} rows; {os.cpu_count()} cores; load average before {load_before}, after {load_after}")
    click.echo("| variant | rows/s | vs in-memory | wall s (with start-up) | CPU (cores busy) | peak RSS MB |")
    click.echo("|---|---|---|---|---|---|")
    for name, r in results.items():
        click.echo(f"| {name} | {r['rows_s']:,.0f} | {r['rows_s'] / base:.2f} | {r['wall_s']:.1f} | {r['cpu']:.2f} | "
                   f"{r['peak_rss_mb']:.0f} |")
    cli_rate = results["attn-score -o out.csv"]["rows_s"]
    click.echo("goals:")
    click.echo(f"  {'MET ' if cli_rate / base >= GOAL_RATIO else 'MISS'} attn-score / in-memory = "
               f"{cli_rate / base:.2f} (goal >= {GOAL_RATIO})")
    click.echo(f"  {'MET ' if cli_rate >= GOAL_RATE else 'MISS'} attn-score rows/s = {cli_rate:,.0f} (goal >= "
               f"{GOAL_RATE:,} on 2 cores, fp32, quiet machine)")
    if json_out:
        Path(json_out).write_text(json.dumps({"rows": rows, "load_before": load_before, "load_after": load_after,
                                              "results": results}, indent=2))


if __name__ == "__main__":
    if len(sys.argv) == 4 and sys.argv[1] == "--child-in-memory":
        _in_memory_child(sys.argv[2], sys.argv[3])
    else:
        cli()
