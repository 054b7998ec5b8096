"""One benchmark variant in its own process, so that its peak RSS and import time are its own.

    python -m bench.worker VARIANT MODEL TEXTS_JSON --threads N --repeats R

VARIANT: keras / keras-bucketed (MODEL = .keras file + tokenizer.json beside it), tflite (MODEL =
.tflite file + tokenizer.json beside it) or onnx (MODEL = bundle folder).
Prints one JSON object: load_s, throughput (reviews/s, median), latency_ms p50/p99 at batch 1,
accuracy, peak_rss_mb, and for onnx the achieved GFLOP/s at batch 64.
"""

from __future__ import annotations

import json
import resource
import sys
import time

import click


def _keras_scorer(model_path: str, threads: int, padded: bool):
    import os
    from pathlib import Path

    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    import tensorflow as tf

    if threads:
        tf.config.threading.set_intra_op_parallelism_threads(threads)
        tf.config.threading.set_inter_op_parallelism_threads(1)
    import keras

    import trainer.attention  # noqa: F401  (registers the layers)
    from runtime.tokenizer import Tokenizer
    from trainer.fit import predict_probabilities

    model = keras.saving.load_model(model_path)
    tokenizer = Tokenizer.load(Path(model_path).with_name("tokenizer.json"))

    import numpy as np

    def score_padded(texts):  # the tutorial's way: every row padded to max_len, model.predict
        ids, _ = tokenizer.encode(texts)
        full = np.zeros((len(texts), tokenizer.spec.max_len), dtype=np.int32)
        full[:, : ids.shape[1]] = ids
        if len(texts) == 1:
            return np.asarray(model.predict_on_batch(full)["probability"])
        return np.asarray(model.predict(full, batch_size=256, verbose=0)["probability"])

    def score_bucketed(texts):  # our trainer's way: length-sorted batches, widths rounded to 64
        return predict_probabilities(model, tokenizer, texts)

    return (score_padded if padded else score_bucketed), tokenizer, None


def _onnx_scorer(bundle_path: str, threads: int, padded: bool):
    import runtime

    classifier = runtime.load(bundle_path, provider="cpu", threads=threads, verify=False)
    return classifier.predict, classifier.tokenizer, classifier


def peak_rss_mb() -> float:
    """VmHWM of this process. (ru_maxrss survives exec on Linux, so a child of a big parent
    would report the parent's peak.)"""
    try:
        for line in open("/proc/self/status"):
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def _median(values):
    values = sorted(values)
    return values[len(values) // 2]


@click.command()
@click.argument("variant", type=click.Choice(["keras", "keras-bucketed", "onnx", "tflite"]))
@click.argument("model_path")
@click.argument("texts_json")
@click.option("--threads", type=int, default=0)
@click.option("--repeats", type=int, default=3)
@click.option("--flops-per-token", type=float, default=0.0)
def main(variant, model_path, texts_json, threads, repeats, flops_per_token):
    data = json.load(open(texts_json))
    texts, labels, typical, full = data["texts"], data["labels"], data["typical"], data["full_length"]

    started = time.perf_counter()
    if variant == "tflite":
        from bench.tflite import worker_scorer as make
    else:
        make = _onnx_scorer if variant == "onnx" else _keras_scorer
    score, tokenizer, classifier = make(model_path, threads, variant == "keras")
    score(texts[:4])  # first call: graph tracing / session warm-up counts as loading
    load_s = time.perf_counter() - started

    runs = []
    for _ in range(repeats):  # end to end from raw text: tokenize + batch + run
        t = time.perf_counter()
        probabilities = score(texts)
        runs.append(time.perf_counter() - t)
    accuracy = sum(int(p >= 0.5) == y for p, y in zip(probabilities, labels)) / len(labels)

    latencies = []
    for _ in range(max(1, repeats // 2)):
        for text in typical:
            t = time.perf_counter()
            score([text])
            latencies.append(1000 * (time.perf_counter() - t))
    latencies.sort()

    result = {
        "variant": variant,
        "load_s": load_s,
        "throughput": len(texts) / _median(runs),
        "latency_p50_ms": latencies[len(latencies) // 2],
        "latency_p99_ms": latencies[min(len(latencies) - 1, int(0.99 * len(latencies)))],
        "accuracy": accuracy,
    }
    if classifier is not None and flops_per_token:  # roofline probe: batch 64 of full-length rows, no padding
        batch = full[:64]
        tokens = sum(len(tokenizer.tokenize(t)) for t in batch)
        times = []
        for _ in range(repeats):
            t = time.perf_counter()
            classifier.predict(batch)
            times.append(time.perf_counter() - t)
        result["gflops_batch64"] = tokens * flops_per_token / _median(times) / 1e9
    result["peak_rss_mb"] = peak_rss_mb()
    json.dump(result, sys.stdout)


if __name__ == "__main__":
    main()
