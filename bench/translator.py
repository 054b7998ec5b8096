"""Side-by-side benchmark of the translator, in one run, on the same sentences.

    python -m bench translator --bundle runs/spa-eng --limit 600

Variants, each in its own process (peak RSS is its own), on the bundle's test-split sentences:
  keras-greedy  the trained Keras model (rebuilt from the bundle's training/ folder) decoded step by
                step as the TensorFlow NMT tutorial does: encoder once, then the step model per token,
                greedy argmax, on the same length-sorted batches of 64 as ours
  greedy        our bundle, beam 1 (runtime.models.search over decoder_step.onnx)
  beam4         our bundle, beam 4
Printed: sentences/s (median of repeats), batch-1 latency p50, peak RSS, the ratios against the
goals (greedy >= 5x Keras greedy; beam 4 >= 1/3 of greedy) and whether our greedy decode equals
Keras' token for token. Needs the `train` extra (TensorFlow) for keras-greedy.
"""

from __future__ import annotations

import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import click
import numpy as np

VARIANTS = ("keras-greedy", "greedy", "beam4")
BATCH = 64
GOALS = [  # (what, numerator, denominator, at least)
    ("greedy / keras-greedy sentences/s", "greedy", "keras-greedy", 5.0),
    ("beam4 / greedy sentences/s", "beam4", "greedy", 1 / 3),
]


def test_sentences(bundle: Path, limit: int, data: str | None) -> list[str]:
    """The first `limit` source sentences of the bundle's recorded test split (never trained on)."""
    from runtime.bundle import Bundle
    from trainer.data import read_pairs, split_pairs

    recorded = Bundle.load(bundle).manifest.get("data", {})
    source, target = recorded.get("direction", "spa->eng").split("->")
    pairs = read_pairs(data or recorded["pairs"], source, target)
    test = split_pairs(pairs, 0.05, 0.05, recorded.get("split_seed", 0))[2]
    return test.sources[:limit]


def _keras_decoder(bundle: str, threads: int):
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    import tensorflow as tf

    if threads:
        tf.config.threading.set_intra_op_parallelism_threads(threads)
        tf.config.threading.set_inter_op_parallelism_threads(1)
    from trainer.fit_seq2seq import keras_greedy, load_translator_training

    trained = load_translator_training(bundle)
    end = trained.target_tokenizer.id_of("</s>")

    def decode(sentences: list[str]) -> list[list[int]]:
        ids = keras_greedy(trained.model, trained.source_tokenizer, trained.target_tokenizer, sentences)
        return [[t for t in row if t != end] for row in ids]

    return decode, trained.source_tokenizer


def _our_decoder(bundle: str, threads: int, beam: int):
    import runtime

    translator = runtime.load(bundle, provider="cpu", threads=threads, verify=False)
    translator.batch_size = BATCH
    def decode(sentences):  # the model's own decode (no splitting or copying), as Keras' is
        return [t.ids for t in translator.translate_parts(sentences, beam, translator.max_length, False)]

    return decode, translator.source_tokenizer


def measure(variant: str, bundle: str, sentences: list[str], threads: int, repeats: int,
            latency_sentences: int) -> dict:
    started = time.perf_counter()
    decode, tokenizer = (_keras_decoder(bundle, threads) if variant == "keras-greedy"
                         else _our_decoder(bundle, threads, 1 if variant == "greedy" else 4))
    load_s = time.perf_counter() - started
    _, lengths = tokenizer.encode(sentences)
    order = np.argsort(lengths, kind="stable")  # the same length-sorted batches for every variant

    def run_all() -> list[list[int]]:
        out: list = [None] * len(sentences)
        for start in range(0, len(order), BATCH):
            rows = order[start : start + BATCH]
            for row, ids in zip(rows, decode([sentences[i] for i in rows])):
                out[row] = ids
        return out

    decode(sentences[:4])  # warm-up (graph tracing, session arenas)
    times, ids = [], None
    for _ in range(repeats):
        t = time.perf_counter()
        ids = run_all()
        times.append(time.perf_counter() - t)
    latencies = []
    for sentence in sentences[:latency_sentences]:
        t = time.perf_counter()
        decode([sentence])
        latencies.append(time.perf_counter() - t)
    return {"load_s": load_s, "throughput": len(sentences) / float(np.median(times)),
            "latency_p50_ms": 1000 * float(np.median(latencies)),
            "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, "ids": ids}


def run(bundle: str, data: str | None, limit: int, repeats: int, threads: int, latency_sentences: int,
        log=lambda line: click.echo(line, err=True)) -> dict:
    """Every variant in its own process on the same sentences; {variant: figures}."""
    bundle_path = Path(bundle)
    if not (bundle_path / "training" / "seq2seq.weights.h5").is_file():
        raise click.ClickException(f"{bundle}: no training/seq2seq.weights.h5 for the Keras baseline; train a bundle "
                                   "with attn-export train-translator (it keeps training/) and bench that")
    sentences = test_sentences(bundle_path, limit, data)
    results = {}
    with tempfile.TemporaryDirectory() as tmp:
        source = Path(tmp) / "sentences.json"
        source.write_text(json.dumps(sentences, ensure_ascii=False), encoding="utf-8")
        for variant in VARIANTS:
            log(f"running {variant} ...")
            command = [sys.executable, "-m", "bench.translator", variant, str(bundle_path), str(source),
                       "--threads", str(threads), "--repeats", str(repeats),
                       "--latency-sentences", str(latency_sentences)]
            done = subprocess.run(command, capture_output=True, text=True,
                                  env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"})
            if done.returncode != 0:
                raise click.ClickException(f"variant {variant} failed: {done.stderr.strip().splitlines()[-3:]}")
            results[variant] = json.loads(done.stdout)
    results["sentences"] = len(sentences)
    return results


def report(results: dict, machine_line: str, threads: int, repeats: int) -> None:
    click.echo(f"machine: {machine_line}; threads {threads}; {results['sentences']} test sentences; "
               f"batches of {BATCH}, medians of {repeats} repeats")
    click.echo("| variant | load s | sentences/s | x keras-greedy | batch-1 p50 ms | peak RSS MB |")
    click.echo("|---|---|---|---|---|---|")
    base = results["keras-greedy"]["throughput"]
    for variant in VARIANTS:
        r = results[variant]
        click.echo(f"| {variant} | {r['load_s']:.2f} | {r['throughput']:.0f} | {r['throughput'] / base:.2f} | "
                   f"{r['latency_p50_ms']:.1f} | {r['peak_rss_mb']:.0f} |")
    for what, a, b, goal in GOALS:
        ratio = results[a]["throughput"] / results[b]["throughput"]
        click.echo(f"{what}: {ratio:.2f} (goal >= {goal:.2f}) {'met' if ratio >= goal else 'NOT met'}")
    same = sum(x == y for x, y in zip(results["greedy"]["ids"], results["keras-greedy"]["ids"]))
    click.echo(f"greedy decode identical to Keras token for token: {same}/{results['sentences']} sentences")


@click.command()
@click.argument("variant", type=click.Choice(VARIANTS))
@click.argument("bundle")
@click.argument("sentences_json")
@click.option("--threads", type=int, default=0)
@click.option("--repeats", type=int, default=3)
@click.option("--latency-sentences", type=int, default=50)
def worker(variant, bundle, sentences_json, threads, repeats, latency_sentences):
    """One variant in this process; prints its figures as JSON."""
    sentences = json.loads(Path(sentences_json).read_text(encoding="utf-8"))
    click.echo(json.dumps(measure(variant, bundle, sentences, threads, repeats, latency_sentences)))


if __name__ == "__main__":
    worker()
