"""Plain attn-score against attn-score --engine ray (1 and 2 workers) on the same rows, in one run.

    python -m bench distributed --rows 200000

The rows are IMDB test reviews repeated (ids made unique). The plain command reads them as one CSV;
the Ray engine reads the same rows split into --files CSV files (its natural input). Each variant
runs as the user would run it, in its own process tree, twice: on 100 rows (its start-up overhead:
imports, Ray, actors, bundle) and on all rows. Peak memory is each process's high-water RSS
(VmHWM, Linux /proc), sampled while it runs: the plain process, and each Ray worker (actor).
The outputs are compared: the ids must be the same (else it fails); the largest probability difference
is printed (plain prints 6 decimals, so up to 5e-7 of it is that rounding).
"""

from __future__ import annotations

import csv
import json
import os
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import click

from bench.machine import machine

STARTUP_ROWS = 100


def _write_rows(data: str, rows: int, work: Path, files: int) -> tuple[Path, Path]:
    """plain.csv with `rows` rows (id, text) and the same rows in ray/part-NN.csv."""
    from runtime.io.tables import TableReader

    reader = TableReader(data)
    reviews = [(record.get("id", str(line)), record["text"]) for line, record in reader.records()]
    rows_all = [(f"{n // len(reviews)}-{reviews[n % len(reviews)][0]}", reviews[n % len(reviews)][1])
                for n in range(rows)]
    folder = work / "ray"
    folder.mkdir()
    _write_csv(work / "plain.csv", rows_all)
    per_file = -(-rows // files)
    for index in range(files):
        chunk = rows_all[index * per_file:(index + 1) * per_file]
        if chunk:
            _write_csv(folder / f"part-{index:02d}.csv", chunk)
    return work / "plain.csv", folder


def _write_csv(path: Path, rows) -> None:
    with open(path, "w", encoding="utf-8", newline="") as handle:
        writer = csv.writer(handle, lineterminator="\n")
        writer.writerow(["id", "text"])
        writer.writerows(rows)


class _PeakMemory:
    """Samples /proc every 0.2 s: the high-water RSS (MB) of the watched process and of every Ray
    map worker (process title 'ray::MapWorker...') in its process tree."""

    def __init__(self, pid: int):
        self.pid, self.peaks, self.workers = pid, {}, {}
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    @staticmethod
    def _hwm_mb(pid) -> float | None:
        try:
            for line in open(f"/proc/{pid}/status"):
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) / 1024
        except OSError:
            return None
        return None

    def _descends(self, pid: str) -> bool:
        """Whether `pid` is in the watched process's tree (a local Ray's workers are), not another Ray's."""
        for _ in range(16):
            try:
                pid = open(f"/proc/{pid}/stat").read().rsplit(")", 1)[1].split()[1]
            except (OSError, IndexError):
                return False
            if pid == str(self.pid):
                return True
            if pid in ("0", "1"):
                return False
        return False

    def _run(self):
        while not self._stop.is_set():
            value = self._hwm_mb(self.pid)
            if value:
                self.peaks["main"] = max(self.peaks.get("main", 0), value)
            for entry in os.listdir("/proc"):
                if not entry.isdigit():
                    continue
                try:
                    title = open(f"/proc/{entry}/cmdline", "rb").read().split(b"\0")[0].decode(errors="replace")
                except OSError:
                    continue
                if title.startswith("ray::MapWorker") and self._descends(entry):
                    value = self._hwm_mb(entry)
                    if value:
                        self.workers[entry] = max(self.workers.get(entry, 0), value)
            self._stop.wait(0.2)

    def stop(self) -> dict:
        self._stop.set()
        self._thread.join()
        return {"main_peak_mb": round(self.peaks.get("main", 0), 1),
                "worker_peak_mb": [round(v, 1) for v in sorted(self.workers.values(), reverse=True)]}


def _run(command: list[str], env: dict) -> dict:
    started = time.perf_counter()
    process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True, env=env)
    memory = _PeakMemory(process.pid)
    _, stderr = process.communicate()
    seconds = time.perf_counter() - started
    figures = memory.stop()
    if process.returncode != 0:
        raise click.ClickException(f"{' '.join(command)} failed: {stderr.strip().splitlines()[-1:]}")
    return {"seconds": round(seconds, 2), **figures, "summary": stderr.strip().splitlines()[-1]}


def _compare(plain_csv: Path, ray_folder: Path) -> tuple[int, float]:
    """(rows compared, max |probability difference|); fails unless the ids are the same."""
    import pyarrow.parquet as pq

    plain = {}
    with open(plain_csv, encoding="utf-8", newline="") as handle:
        for record in csv.DictReader(handle):
            plain[record["id"]] = float(record["probability"])
    ids, probabilities = [], []
    for part in sorted(p for p in ray_folder.iterdir() if p.suffix == ".parquet"):
        table = pq.read_table(part, columns=["id", "probability"])
        ids += table.column("id").to_pylist()
        probabilities += table.column("probability").to_pylist()
    if sorted(ids) != sorted(plain):
        raise click.ClickException(f"the Ray output's ids differ from attn-score's ({len(ids)} vs {len(plain)} rows)")
    return len(ids), max(abs(p - plain[i]) for i, p in zip(ids, probabilities))


def run(data: str, rows: int, files: int, workers: list[int], model: str, log) -> dict:
    env = {**os.environ,
           "PYTHONPATH": os.pathsep.join([str(Path(__file__).resolve().parents[1]), os.environ.get("PYTHONPATH", "")])}
    score = [sys.executable, "-m", "runtime.cli", "--model", model]
    results = {}
    with tempfile.TemporaryDirectory(prefix="bench-distributed-") as folder:
        work = Path(folder)
        plain_csv, ray_inputs = _write_rows(data, rows, work, files)
        (work / "small").mkdir()
        small_csv, small_folder = _write_rows(data, STARTUP_ROWS, work / "small", 1)
        log(f"{rows:,} rows in 1 file (plain) and {len(list(ray_inputs.iterdir()))} files (Ray), "
            f"{plain_csv.stat().st_size / 1e6:.0f} MB")
        variants = [("plain", score + ["{input}", "-o", "{out}.csv"], plain_csv, small_csv)]
        for count in workers:
            variants.append((f"ray-{count}",
                             score + ["--engine", "ray", "--workers", str(count), "{input}", "-o", "{out}"],
                             ray_inputs, small_folder))
        for name, template, full, small in variants:
            figures = {}
            for kind, source in (("startup", small), ("full", full)):
                out = work / f"{name}-{kind}"
                command = [part.format(input=source, out=out) for part in template]
                log(f"{name}: {kind} ({STARTUP_ROWS if kind == 'startup' else rows:,} rows) ...")
                figures[kind] = _run(command, env)
            full_s, startup_s = figures["full"]["seconds"], figures["startup"]["seconds"]
            results[name] = {
                "rows": rows,
                "seconds": full_s,
                "rows_per_s": round(rows / full_s, 1),
                "startup_s": startup_s,
                "rows_per_s_after_startup": round(rows / max(full_s - startup_s, 1e-9), 1),
                "main_peak_mb": figures["full"]["main_peak_mb"],
                "worker_peak_mb": figures["full"]["worker_peak_mb"],
                "summary": figures["full"]["summary"],
            }
            if name != "plain":
                compared, max_diff = _compare(work / "plain-full.csv", work / f"{name}-full")
                results[name]["max_abs_diff_vs_plain"] = max_diff
                results[name]["rows_compared"] = compared
    return results


def print_table(results: dict, echo) -> None:
    plain = results["plain"]
    echo("| variant | rows/s end to end | vs plain | start-up s (100 rows) | rows/s after start-up | peak MB: command "
         "| peak MB per worker |")
    echo("|---|---|---|---|---|---|---|")
    for name, r in results.items():
        workers = ", ".join(f"{v:.0f}" for v in r["worker_peak_mb"]) or "-"
        echo(f"| {name} | {r['rows_per_s']:,.0f} | {r['rows_per_s'] / plain['rows_per_s']:.2f}x | {r['startup_s']:.1f} "
             f"| {r['rows_per_s_after_startup']:,.0f} | {r['main_peak_mb']:.0f} | {workers} |")
    for name, r in results.items():
        if "max_abs_diff_vs_plain" in r:
            echo(f"{name}: {r['rows_compared']:,} rows, same ids as plain, max |Δprobability| = "
                 f"{r['max_abs_diff_vs_plain']:.2e} (plain prints 6 decimals)")


@click.command()
@click.option("--rows", type=click.IntRange(STARTUP_ROWS), default=200_000, show_default=True)
@click.option("--files", type=click.IntRange(1), default=8, show_default=True,
              help="Files the Ray engine reads the rows from.")
@click.option("--workers", "workers", default="1,2", show_default=True,
              help="Ray worker counts to run, comma-separated.")
@click.option("--data", type=click.Path(exists=True), default="../shared/datasets/imdb/test.csv.gz", show_default=True)
@click.option("--model", default="imdb", show_default=True)
@click.option("--json-out", type=click.Path(dir_okay=False), default=None, help="Also write the figures as JSON.")
def distributed(rows, files, workers, data, model, json_out):
    """Plain attn-score vs --engine ray with 1 and 2 workers: rows/s, start-up, peak memory per worker."""
    log = lambda line: click.echo(line, err=True)  # noqa: E731
    results = run(data, rows, files, [int(w) for w in workers.split(",")], model, log)
    click.echo(f"machine: {machine()}; load average at the end: {os.getloadavg()[0]:.1f}")
    print_table(results, click.echo)
    if json_out:
        Path(json_out).write_text(json.dumps({"machine": machine(), "results": results}, indent=1) + "\n")
