"""`python -m bench text-graph`: a bundle's text graph (model_text.onnx: the tokenizer in the graph)
against the Python tokenizer + token graph (model.onnx), on the same texts in one run.

    python -m bench text-graph --bundle BUNDLE --limit 2000

Both variants score the same batches (texts in file order) in onnxruntime with the same thread
count: throughput (reviews/s, whole pass) and batch-1 latency (p50/p99 over the first reviews,
tokenizing included). Graph sizes on disk, the .ort size where `attn-export ort` wrote one, and the
load average before and after (the machine may be shared).
"""

from __future__ import annotations

import statistics
import time
from pathlib import Path

import click
import numpy as np


def _load() -> str:
    try:
        return " ".join(open("/proc/loadavg").read().split()[:3])
    except OSError:
        return "n/a"


def _variants(bundle, threads: int):
    """name -> score(texts): each returns probabilities, tokenizing included."""
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.intra_op_num_threads = threads
    token = ort.InferenceSession(bundle.graph_bytes("model"), options, providers=["CPUExecutionProvider"])
    text = ort.InferenceSession(bundle.graph_bytes("text"), options, providers=["CPUExecutionProvider"])
    tokenizer = bundle.tokenizer

    def python_tokenizer(texts):
        ids, _ = tokenizer.encode(texts)
        return token.run(["probability"], {"tokens": ids})[0]

    def text_graph(texts):
        return text.run(["probability"], {"text": np.array(texts, dtype=object)})[0]

    return {"python tokenizer + model.onnx": python_tokenizer, "model_text.onnx": text_graph}


def _measure(score, texts: list[str], batch: int, latency_texts: int) -> dict:
    score(texts[:batch])  # warm-up
    started = time.perf_counter()
    for start in range(0, len(texts), batch):
        score(texts[start : start + batch])
    throughput = len(texts) / (time.perf_counter() - started)
    latencies = []
    for text in texts[:latency_texts]:
        started = time.perf_counter()
        score([text])
        latencies.append(1e3 * (time.perf_counter() - started))
    latencies.sort()
    return {"throughput": throughput, "p50_ms": statistics.median(latencies),
            "p99_ms": latencies[min(len(latencies) - 1, int(0.99 * len(latencies)))]}


@click.command("text-graph")
@click.option("--bundle", type=click.Path(exists=True, file_okay=False), default="artifacts/imdb-bilstm-attention",
              show_default=True, help="Bundle with a text graph (attn-export text-graph adds one).")
@click.option("--data", type=click.Path(exists=True), default=None,
              help="Review file (default: IMDB test beside the repo).")
@click.option("--limit", type=int, default=2000, show_default=True, help="Reviews scored per variant.")
@click.option("--batch", type=int, default=32, show_default=True, help="Reviews per batch for the throughput pass.")
@click.option("--latency-texts", type=int, default=200, show_default=True, help="Reviews timed one at a time.")
@click.option("--threads", type=int, default=1, show_default=True, help="onnxruntime intra-op threads (both variants).")
def text_graph(bundle, data, limit, batch, latency_texts, threads):
    """model_text.onnx vs Python tokenizer + model.onnx: throughput, batch-1 p50, graph and .ort sizes."""
    from runtime.bundle import Bundle
    from runtime.io.tables import TableReader

    loaded = Bundle.load(bundle)
    if "text" not in loaded.manifest["graphs"]:
        raise click.ClickException(f"{bundle}: no text graph (attn-export text-graph {bundle} adds one)")
    data = data or Path(__file__).resolve().parents[2] / "shared" / "datasets" / "imdb" / "test.csv.gz"
    texts = [record["text"] for _, (_, record) in zip(range(limit), TableReader(data).records())]
    before = _load()
    results = {name: _measure(score, texts, batch, latency_texts) for name, score in _variants(loaded, threads).items()}
    click.echo(f"{len(texts)} reviews from {data}, batches of {batch}, {threads} thread(s); "
               f"load average before {before}")
    click.echo("| variant | reviews/s | batch-1 p50 ms | p99 ms |")
    click.echo("|---|---|---|---|")
    for name, r in results.items():
        click.echo(f"| {name} | {r['throughput']:.0f} | {r['p50_ms']:.2f} | {r['p99_ms']:.2f} |")
    folder = Path(bundle)
    sizes = {name: (folder / name).stat().st_size for name in ("model.onnx", "model_text.onnx", "model_text.ort")
             if (folder / name).is_file()}
    click.echo("sizes: " + ", ".join(f"{name} {size / 1e6:.2f} MB" for name, size in sizes.items()))
    click.echo(f"load average after {_load()}")
