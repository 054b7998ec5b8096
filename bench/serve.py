"""`python -m bench serve`: attn-serve under load on loopback against in-process predict, in one run, on
the same IMDB test reviews.

    python -m bench serve                    # 6 s per scenario, about 1.5 minutes in all
    python -m bench serve --duration 3       # quicker

1. in-process (this process, no server running): `Classifier.predict` on one review, and on batches of
   32, per call, from one thread per core with single-threaded sessions (attn-serve's layout): the
   reference each serving scenario of the same request size is compared with
2. attn-serve (its own process, default options) and the load generator (its own process: aiohttp,
   asyncio; httpx's AsyncClient was the bottleneck at 64 connections: requests waited ~1 s in the
   client for ~0.2 s in the server): 1, 8 and 64 closed-loop clients sending single reviews, then batches of 32; each
   scenario stops after --duration seconds or --max-requests requests, whichever comes first
3. 2x overload: single reviews arrive open-loop at twice the best single-review rows/s of step 2, for
   --duration seconds, at a fresh server with --max-queue-rows 128 and --max-in-flight 128 (so the
   limits are reached within the run);
   every request must end in 200 or 503 (a timeout, an error or another status is "lost"); the
   server's RSS is read before, during (its peak) and after
The load average is printed before and after: on a shared machine the figures move with it.
"""

from __future__ import annotations

import asyncio
import itertools
import json
import subprocess
import sys
import tempfile
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import click
import numpy as np

from bench.machine import machine

CLIENTS = (1, 8, 64)
BATCH = 32
GOAL_THROUGHPUT, GOAL_P99_MS = 0.80, 25.0
OVERLOAD_QUEUE_ROWS = 128  # the overload server's --max-queue-rows and --max-in-flight: small enough to fill
IN_PROCESS_ROWS = 1024  # reviews scored in-process per request size


def load_average() -> str:
    try:
        return " ".join(open("/proc/loadavg").read().split()[:3])
    except OSError:
        return "n/a"


def percentiles_ms(seconds: list[float]) -> tuple[float, float]:
    if not seconds:
        return float("nan"), float("nan")
    p50, p99 = np.percentile(np.array(seconds) * 1e3, [50, 99])
    return float(p50), float(p99)


# === 1. In-process ===
def in_process(model: str, texts: list[str], workers: int, max_rows: int) -> dict:
    """predict() on single reviews and on batches of 32, from `workers` threads at once (one
    single-threaded session run per core, as attn-serve runs them): {size: rows/s and latency}."""
    import runtime

    classifier = runtime.load(model, session_options=runtime.SessionOptions(threads=1), batch_tokens=4096)
    classifier.predict(texts[:BATCH])  # warm-up
    figures = {}
    for size in (1, BATCH):
        calls = [texts[i : i + size] for i in range(0, min(len(texts), max_rows) - size + 1, size)]
        timed: list[float] = []

        def run(batch, timed=timed):
            started = time.perf_counter()
            classifier.predict(batch)
            timed.append(time.perf_counter() - started)

        started = time.perf_counter()
        with ThreadPoolExecutor(workers) as pool:
            list(pool.map(run, calls))
        elapsed = time.perf_counter() - started
        figures[size] = {"rows_per_s": len(calls) * size / elapsed, "latency_ms": percentiles_ms(timed)}
    return figures


# === 2, 3. The load generator (its own process) ===
async def closed_loop(url: str, bodies: list[bytes], clients: int, max_requests: int, duration_s: float) -> dict:
    import aiohttp

    statuses, lost, latencies, counter = Counter(), Counter(), [], itertools.count()
    connector = aiohttp.TCPConnector(limit=clients)
    async with aiohttp.ClientSession(url, connector=connector, timeout=aiohttp.ClientTimeout(total=120)) as client:
        stop = time.perf_counter() + duration_s

        async def one_client():
            while time.perf_counter() < stop and (index := next(counter)) < max_requests:
                await send(client, bodies[index % len(bodies)], statuses, lost, latencies)

        started = time.perf_counter()
        await asyncio.gather(*(one_client() for _ in range(clients)))
        elapsed = time.perf_counter() - started
    return {"elapsed_s": elapsed, "statuses": dict(statuses), "lost": dict(lost), "latencies": latencies}


async def open_loop(url: str, bodies: list[bytes], rate: float, duration_s: float) -> dict:
    import aiohttp

    statuses, lost, latencies, tasks = Counter(), Counter(), [], []
    connector = aiohttp.TCPConnector(limit=2000)
    async with aiohttp.ClientSession(url, connector=connector, timeout=aiohttp.ClientTimeout(total=120)) as client:
        started = time.perf_counter()
        for index in range(int(rate * duration_s)):
            await asyncio.sleep(max(0.0, started + index / rate - time.perf_counter()))
            tasks.append(asyncio.create_task(send(client, bodies[index % len(bodies)], statuses, lost, latencies)))
        await asyncio.gather(*tasks)
        elapsed = time.perf_counter() - started
    return {"elapsed_s": elapsed, "sent": len(tasks), "statuses": dict(statuses), "lost": dict(lost),
            "latencies": latencies}


async def send(client, body: bytes, statuses: Counter, lost: Counter, latencies: list) -> None:
    """One request; a timeout or connection error is `lost` (the overload goal counts them)."""
    import aiohttp

    started = time.perf_counter()
    try:
        async with client.post("/v1/score", data=body, headers={"content-type": "application/json"}) as response:
            await response.read()
    except (aiohttp.ClientError, asyncio.TimeoutError) as error:
        lost[type(error).__name__] += 1
        return
    statuses[response.status] += 1
    if response.status == 200:
        latencies.append(time.perf_counter() - started)


def generate(spec: dict) -> dict:
    """The load generator's work: `spec` says the URL, the request bodies and the scenario."""
    bodies = [body.encode() for body in spec["bodies"]]
    if spec["kind"] == "open":
        return asyncio.run(open_loop(spec["url"], bodies, spec["rate"], spec["duration_s"]))
    return asyncio.run(closed_loop(spec["url"], bodies, spec["clients"], spec["max_requests"], spec["duration_s"]))


def run_generator(spec: dict, work: Path) -> dict:
    path = work / "spec.json"
    path.write_text(json.dumps(spec))
    done = subprocess.run([sys.executable, "-m", "bench.serve", str(path)], capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise click.ClickException(f"load generator failed: {done.stderr.strip().splitlines()[-1:]}")
    return json.loads(done.stdout)


def rss_mb(pid: int) -> dict:
    """The process's resident memory now and its peak (VmHWM), in MB."""
    fields = {}
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        key, _, value = line.partition(":")
        if key in ("VmRSS", "VmHWM"):
            fields[key] = int(value.split()[0]) / 1024
    return fields


# === The run ===
def sample(data: str, limit: int) -> list[str]:
    from runtime.io.tables import TableReader

    texts = [record["text"] for _, record in TableReader(data).records()]
    order = np.random.default_rng(0).permutation(len(texts))[:limit]  # the file is sorted by label
    return [texts[i] for i in order]


def bodies_of(model: str, texts: list[str], size: int) -> list[str]:
    return [json.dumps({"model": model, "texts": texts[i : i + size]}) for i in range(0, len(texts) - size + 1, size)]


def serve_scenarios(server, model, texts, duration_s, max_requests, work) -> list[dict]:
    rows = []
    for size in (1, BATCH):
        bodies = bodies_of(model, texts, size)
        run_generator({"kind": "closed", "url": server.url, "bodies": bodies[:8], "clients": 2, "max_requests": 8,
                       "duration_s": 10}, work)  # warm-up
        for clients in CLIENTS:
            result = run_generator({"kind": "closed", "url": server.url, "bodies": bodies, "clients": clients,
                                    "max_requests": max_requests // size, "duration_s": duration_s}, work)
            answered = result["statuses"].get("200", 0)
            rows.append({"size": size, "clients": clients, "requests": sum(result["statuses"].values()),
                         "rows_per_s": answered * size / result["elapsed_s"],
                         "latency_ms": percentiles_ms(result["latencies"]),
                         "other": {k: v for k, v in result["statuses"].items() if k != "200"} | result["lost"],
                         "load": load_average()})
    return rows


def overload(server, model, texts, rate, duration_s, work) -> dict:
    before = rss_mb(server.process.pid)
    result = run_generator({"kind": "open", "url": server.url, "bodies": bodies_of(model, texts, 1), "rate": rate,
                            "duration_s": duration_s}, work)
    after = rss_mb(server.process.pid)
    statuses = Counter({int(code): count for code, count in result["statuses"].items()})
    lost = sum(result["lost"].values()) + sum(count for code, count in statuses.items() if code not in (200, 503))
    return {"rate": rate, "sent": result["sent"], "ok": statuses[200], "busy": statuses[503], "lost": lost,
            "lost_detail": result["lost"], "other_statuses": {c: n for c, n in statuses.items() if c not in (200, 503)},
            "rss_before_mb": before["VmRSS"], "rss_peak_mb": after["VmHWM"], "rss_after_mb": after["VmRSS"],
            "latency_ms": percentiles_ms(result["latencies"]), "load": load_average(), "duration_s": duration_s}


def report(reference: dict, rows: list[dict], overloaded: dict, header: str) -> None:
    echo = click.echo
    echo(header)
    echo(f"{'':24}{'clients':>8}{'requests':>10}{'rows/s':>9}{'p50 ms':>9}{'p99 ms':>9}{'vs in-process':>15}  load avg")
    for size, figures in reference.items():
        if size == "load":
            continue
        p50, p99 = figures["latency_ms"]
        name = "in-process, 1 review" if size == 1 else f"in-process, {size} per call"
        echo(f"{name:24}{'threads':>8}{'':>10}{figures['rows_per_s']:>9.0f}{p50:>9.1f}{p99:>9.1f}{'':>15}  "
             f"{reference['load']}")
    for row in rows:
        p50, p99 = row["latency_ms"]
        name = "serve, 1 review" if row["size"] == 1 else f"serve, {BATCH} per request"
        note = f"  other: {row['other']}" if row["other"] else ""
        ratio = row["rows_per_s"] / reference[row["size"]]["rows_per_s"]
        echo(f"{name:24}{row['clients']:>8}{row['requests']:>10}{row['rows_per_s']:>9.0f}{p50:>9.1f}{p99:>9.1f}"
             f"{100 * ratio:>14.0f}%  {row['load']}{note}")
    o = overloaded
    echo(f"2x overload: {o['rate']:.0f} single-review requests/s for {o['duration_s']:g} s, --max-queue-rows and "
         f"--max-in-flight {OVERLOAD_QUEUE_ROWS}: sent {o['sent']}, "
         f"200: {o['ok']}, 503: {o['busy']}, lost: {o['lost']} {o['lost_detail'] or ''}{o['other_statuses'] or ''}; "
         f"p50/p99 of the 200s {o['latency_ms'][0]:.0f}/{o['latency_ms'][1]:.0f} ms; server RSS "
         f"{o['rss_before_mb']:.0f} MB before, peak {o['rss_peak_mb']:.0f} MB, {o['rss_after_mb']:.0f} MB after; "
         f"load avg {o['load']}")
    echo("goals (vs in-process: rows/s over in-process predict with requests of the same size, same threads):")
    for row in rows:
        if row["clients"] == 64:
            ratio = row["rows_per_s"] / reference[row["size"]]["rows_per_s"]
            mark = "MET " if ratio >= GOAL_THROUGHPUT else "MISS"
            echo(f"  {mark} 64 clients, {row['size']} per request: {100 * ratio:.0f} % of in-process throughput "
                 f"(target >= {100 * GOAL_THROUGHPUT:.0f} %)")
    eight = next(row for row in rows if row["clients"] == 8 and row["size"] == 1)
    mark = "MET " if eight["latency_ms"][1] <= GOAL_P99_MS else "MISS"
    echo(f"  {mark} 8 clients, single review p99 = {eight['latency_ms'][1]:.1f} ms (target <= {GOAL_P99_MS:g} ms)")
    echo(f"  {'MET ' if o['lost'] == 0 else 'MISS'} 2x overload: {o['lost']} lost of {o['sent']} (target 0)")


@click.command()
@click.option("--model", default="imdb", show_default=True, help="Sentiment bundle (shipped name or folder).")
@click.option("--data", type=click.Path(exists=True, dir_okay=False), default="../shared/datasets/imdb/test.csv.gz",
              show_default=True, help="Reviews (a 'text' column); a seeded sample of --limit is used.")
@click.option("--limit", type=click.IntRange(BATCH), default=2048, show_default=True, help="Reviews sampled.")
@click.option("--duration", "duration_s", type=click.FloatRange(0.5, 120), default=6.0, show_default=True,
              help="Seconds per scenario (each also stops after --max-requests rows).")
@click.option("--max-requests", type=click.IntRange(BATCH), default=4000, show_default=True,
              help="Most rows sent per scenario.")
@click.option("--workers", type=click.IntRange(0), default=0, show_default=True,
              help="attn-serve --workers and the in-process threads (0 = one per core).")
def serve(model, data, limit, duration_s, max_requests, workers):
    """attn-serve under load (1, 8, 64 clients; single reviews and batches of 32; 2x overload) vs in-process."""
    from runtime.engines.local import default_workers
    from runtime.serve.process import ServerProcess

    workers = workers or default_workers("cpu")
    texts = sample(data, limit)
    header = (f"attn-serve vs in-process, {model}, {len(texts)} IMDB test reviews, {workers} workers; {machine()}; "
              f"load average before: {load_average()} (the machine is shared: trainings run beside this)")
    click.echo("in-process ...", err=True)
    reference = {**in_process(model, texts, workers, IN_PROCESS_ROWS), "load": load_average()}
    with tempfile.TemporaryDirectory() as tmp:
        with ServerProcess(["--model", model, "--workers", str(workers)], log=Path(tmp) / "server.log") as server:
            click.echo(f"attn-serve at {server.url} ...", err=True)
            rows = serve_scenarios(server, model, texts, duration_s, max_requests, Path(tmp))
        rate = 2 * max(row["rows_per_s"] for row in rows if row["size"] == 1)
        overload_args = ["--model", model, "--workers", str(workers), "--max-queue-rows", str(OVERLOAD_QUEUE_ROWS),
                         "--max-in-flight", str(OVERLOAD_QUEUE_ROWS), "--max-texts", str(BATCH)]
        with ServerProcess(overload_args, log=Path(tmp) / "overload.log") as server:
            click.echo(f"2x overload at {rate:.0f} requests/s on {server.url} ...", err=True)
            overloaded = overload(server, model, texts, rate, duration_s, Path(tmp))
    report(reference, rows, overloaded, header)
    click.echo(f"load average after: {load_average()}")


if __name__ == "__main__":  # the load generator: python -m bench.serve SPEC.json -> JSON on stdout
    print(json.dumps(generate(json.loads(Path(sys.argv[1]).read_text()))))
