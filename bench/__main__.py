"""Side-by-side benchmark of the classifier, in one run, on the same texts.

    python -m bench classifier --bundle artifacts/imdb-bilstm-attention \
        --data ../shared/datasets/imdb/test.csv.gz --limit 2000

Variants, each scored in its own process (peak RSS and import time are its own):
  (a) keras     the trained Keras model as a user would run it: our tokenizer, every row padded to
                max_len, model.predict(batch_size=256) (predict_on_batch at batch 1)
  (a') keras-bucketed  the same model with our length-sorted batches (a stronger baseline, for honesty)
  (b) loop      tf2onnx's default export of the same masked model (generic Loop), in onnxruntime
  (c) fp32      our bundle: fused LSTM + sequence_lens, token-budget batches
  (d) int8      our bundle dynamically quantized (DynamicQuantizeLSTM / MatMulInteger)
  (e) tflite    TensorFlow Lite (LiteRT) of the same Keras model: the first of the ways a user tries
                that converts and runs (bench/tflite.py); the errors of the others are printed
Plus a sgemm roofline measured in the same run with numpy (same thread count).
Needs the `train` extra (TensorFlow, tf2onnx) for (a) and (b).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import click
import numpy as np

from bench.machine import machine, sgemm_gflops

TARGETS = [  # (what, measure(results), at least / at most, goal)
    ("(c) / (a) end-to-end throughput", lambda r: _ratio(r, "fp32", "keras", "throughput"), ">=", 5.0),
    ("(b) / (c) batch-1 p50 latency", lambda r: r["loop"]["latency_p50_ms"] / r["fp32"]["latency_p50_ms"], ">=", 10.0),
    ("(d) / (c) end-to-end throughput", lambda r: _ratio(r, "int8", "fp32", "throughput"), ">=", 1.5),
    ("(c) - (d) accuracy, points", lambda r: 100 * (r["fp32"]["accuracy"] - r["int8"]["accuracy"]), "<=", 0.5),
    ("(a) / (c) peak RSS", lambda r: r["keras"]["peak_rss_mb"] / r["fp32"]["peak_rss_mb"], ">=", 4.0),
    ("(c) / sgemm GFLOP/s at batch 64", lambda r: r["fp32"]["gflops_batch64"] / r["sgemm_gflops"], ">=", 0.6),
]


def _ratio(results, a, b, key):
    return results[a][key] / results[b][key]


def flops_per_token(config: dict) -> float:
    """Multiply-adds x 2 per (valid) token: bidirectional LSTM layers, attention projection of the values."""
    e, u = config["embedding_dim"], config["lstm_units"]
    lstm = 0
    width = e
    for _ in range(config["lstm_layers"]):
        lstm += 2 * 4 * (width + u) * u * 2  # 2 directions x 4 gates x (W x + R h)
        width = 2 * u
    attention = {"concat": 2 * width * config["attention_units"]
                 + 2 * config["attention_units"]}.get(config["attention"], 2 * width)
    return float(lstm + attention)


def prepare_variants(bundle: Path, loaded, work: Path, log) -> dict[str, tuple[str, str]]:
    """variant -> (worker kind, model path). Builds (b) and (d) from the bundle's Keras model."""

    from trainer import export as E
    from trainer.models.classifier import ClassifierConfig

    keras_model = bundle / "training" / "model.keras"
    if not keras_model.is_file():
        raise click.ClickException(f"{bundle}: no training/model.keras; (a) and (b) need the Keras model")
    manifest = loaded.manifest
    variants = {"keras": ("keras", str(keras_model)), "keras-bucketed": ("keras-bucketed", str(keras_model)),
                "fp32": ("onnx", str(bundle))}

    import keras
    import tensorflow as tf
    import tf2onnx

    import trainer.attention  # noqa: F401

    log("building (b): tf2onnx default export of the masked model")
    model = keras.saving.load_model(keras_model)
    proto, _ = tf2onnx.convert.from_keras(model,
                                          input_signature=(tf.TensorSpec((None, None), tf.int32, name="tokens"),),
                                          opset=manifest["opset"])
    context = E.ExportContext(ClassifierConfig.from_dict(manifest["model"]), loaded.tokenizer)
    proto = E.pass_name_outputs(proto, context)
    ops = {node.op_type for node in proto.graph.node}
    log(f"  (b) holds Loop: {'Loop' in ops}, fused LSTM: {'LSTM' in ops}")
    variants["loop"] = ("onnx", str(_bundle_copy(bundle, work / "loop", proto)))

    from bench.tflite import convert as convert_tflite

    log("building (e): TensorFlow Lite (LiteRT) of the Keras model")
    variants["tflite"] = convert_tflite(model, ClassifierConfig.from_dict(manifest["model"]),
                                        loaded.tokenizer, work, log)

    if manifest["precision"] == "fp32":
        log("building (d): int8 dynamic quantization of (c)")
        int8_dir = work / "int8"
        int8_dir.mkdir()
        E.quantize_int8(bundle / "model.onnx", int8_dir / "model.onnx")
        variants["int8"] = ("onnx", str(_bundle_copy(bundle, int8_dir, None)))
    return variants


def _bundle_copy(bundle: Path, target: Path, proto) -> Path:
    """A bundle folder around another graph (the manifest's checksum is skipped by the worker)."""
    import onnx

    target.mkdir(exist_ok=True)
    if proto is not None:
        onnx.save(proto, target / "model.onnx")
    (target / "manifest.json").write_text((bundle / "manifest.json").read_text())
    return target


def sample_texts(data: str, limit: int, tokenizer, seed: int = 0) -> dict:
    from trainer.data import read_table

    table = read_table(data)
    order = np.random.default_rng(seed).permutation(len(table))[:limit]
    texts = [table.texts[i] for i in order]
    labels = [int(table.labels[i]) for i in order]
    lengths = np.array([len(tokenizer.tokenize(t)) for t in texts])
    median = int(np.median(lengths))
    typical = [t for t, n in zip(texts, lengths) if abs(n - median) <= 0.1 * median][:50]
    full = [t for t, n in zip(texts, lengths) if n == tokenizer.spec.max_len][:64]
    return {"texts": texts, "labels": labels, "typical": typical, "full_length": full, "median_tokens": median,
            "mean_tokens": float(lengths.mean())}


@click.group()
def main():
    """Benchmarks that print tables (not part of the test run)."""


@main.command()
@click.option("--bundle", type=click.Path(exists=True, file_okay=False), default="artifacts/imdb-bilstm-attention",
              show_default=True, help="Bundle with training/model.keras.")
@click.option("--data", type=click.Path(exists=True), default="../shared/datasets/imdb/test.csv.gz", show_default=True)
@click.option("--limit", type=int, default=2000, show_default=True, help="Reviews scored per variant.")
@click.option("--repeats", type=int, default=3, show_default=True, help="Timed repeats (medians are reported).")
@click.option("--threads", type=int, default=0, show_default=True, help="Threads for every variant (0 = all cores).")
@click.option("--json-out", type=click.Path(dir_okay=False), default=None, help="Also write the figures as JSON.")
def classifier(bundle, data, limit, repeats, threads, json_out):
    """(a) Keras vs (b) tf2onnx Loop vs (c) our fp32 bundle vs (d) int8 vs (e) TFLite, side by side."""
    from runtime.bundle import Bundle

    log = lambda line: click.echo(line, err=True)  # noqa: E731
    bundle = Path(bundle)
    loaded = Bundle.load(bundle)
    manifest = loaded.manifest
    threads = threads or os.cpu_count()
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        sample = sample_texts(data, limit, loaded.tokenizer)
        (work / "texts.json").write_text(json.dumps(sample))
        variants = prepare_variants(bundle, loaded, work, log)
        os.environ.setdefault("OMP_NUM_THREADS", str(threads))
        sgemm = sgemm_gflops()
        fpt = flops_per_token(manifest["model"])
        results = {"sgemm_gflops": sgemm}
        for name, (kind, path) in variants.items():
            if kind == "failed":  # e.g. TFLite: no conversion that runs; the row shows the error
                results[name] = {"error": path}
                continue
            log(f"running {name} ...")
            command = [sys.executable, "-m", "bench.worker", kind, path, str(work / "texts.json"),
                       "--threads", str(threads), "--repeats", str(repeats),
                       "--flops-per-token", str(fpt if name == "fp32" else 0)]
            done = subprocess.run(command, capture_output=True, text=True,
                                  env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"})
            if done.returncode != 0:
                raise click.ClickException(f"variant {name} failed: {done.stderr.strip().splitlines()[-1:]}")
            results[name] = json.loads(done.stdout)
            if name == "tflite":  # how (e) was made, and the attempts that failed first
                results[name]["notes"] = json.loads((work / "tflite.json").read_text())
    report(results, sample, machine(), threads, limit, repeats, fpt)
    if json_out:
        Path(json_out).write_text(json.dumps({"machine": machine(), "threads": threads, "results": results}, indent=2))


@main.command()
@click.option("--bundle", default="imdb", show_default=True, help="Bundle folder or shipped short name.")
@click.option("--data", type=click.Path(exists=True), default="../shared/datasets/imdb/test.csv.gz", show_default=True)
@click.option("--limit", type=int, default=1000, show_default=True)
@click.option("--repeats", type=int, default=3, show_default=True)
def tune(bundle, data, limit, repeats):
    """Throughput of the fp32 bundle over batch token budgets and session settings, and the share of
    end-to-end time spent tokenizing (medians of repeats, same texts)."""
    import runtime

    classifier = runtime.load(bundle, provider="cpu")
    sample = sample_texts(data, limit, classifier.tokenizer)
    texts = sample["texts"]

    def rate(scorer) -> float:
        scorer(texts[:8])
        times = []
        for _ in range(repeats):
            t = time.perf_counter()
            scorer(texts)
            times.append(time.perf_counter() - t)
        return len(texts) / sorted(times)[repeats // 2]

    t = time.perf_counter()
    for _ in range(repeats):
        classifier.tokenizer.encode(texts)
    tokenize_s = (time.perf_counter() - t) / repeats
    click.echo(f"machine: {machine()}; {limit} reviews (median {sample['median_tokens']} tokens)")
    click.echo(f"tokenization alone: {len(texts) / tokenize_s:,.0f} reviews/s")
    click.echo("| setting | reviews/s |")
    click.echo("|---|---|")
    for budget in (1024, 2048, 4096, 8192, 16384, 65536):
        click.echo(f"| batch_tokens {budget} | "
                   f"{rate(runtime.load(bundle, provider='cpu', batch_tokens=budget).predict):.0f} |")
    for threads in (1, 2):
        click.echo(f"| threads {threads} | {rate(runtime.load(bundle, provider='cpu', threads=threads).predict):.0f} |")
    for name, options in (("graph optimization basic", {"optimization": "basic"}),
                          ("graph optimization off", {"optimization": "off"}),
                          ("CPU memory arena off", {"memory_arena": False})):
        scorer = runtime.load(bundle, provider="cpu", session_options=runtime.SessionOptions(**options)).predict
        click.echo(f"| {name} | {rate(scorer):.0f} |")


def _attn_score_run(model: str, data: str, text_column: str) -> tuple[list[int], float, str]:
    """One real `attn-score` subprocess over `data`: (predicted labels, seconds end to end, its last
    stderr line)."""
    import csv

    with tempfile.TemporaryDirectory() as tmp:
        scores = Path(tmp) / "scores.csv"
        command = [sys.executable, "-m", "runtime.cli", data, "--model", model, "--text-column", text_column,
                   "-o", str(scores),
                   "--force-labels"]  # accuracy counts every row: the model's label also where its status is not ok
        started = time.perf_counter()
        done = subprocess.run(command, capture_output=True, text=True)
        elapsed = time.perf_counter() - started
        if done.returncode != 0:
            raise click.ClickException(done.stderr.strip())
        with open(scores, newline="", encoding="utf-8") as handle:
            predicted = [int(row["label"] == "positive") for row in csv.DictReader(handle)]
    return predicted, elapsed, next(line for line in done.stderr.splitlines() if line.startswith("scored "))


@main.command()
@click.option("--model", "models", multiple=True, default=["imdb"], show_default=True,
              help="Bundle folder or shipped short name; repeat to compare models side by side (accuracy, size, "
                   "rows/s and the ratio to the first model).")
@click.option("--data", type=click.Path(exists=True), default="../shared/datasets/imdb/test.csv.gz", show_default=True)
@click.option("--text-column", default="text", show_default=True)
@click.option("--label-column", default="label", show_default=True)
@click.option("--repeats", type=click.IntRange(1), default=1, show_default=True,
              help="Runs per model, interleaved (A B A B ...); the median time is reported.")
@click.option("--record", is_flag=True, help="Write the figure, with the CPU flags it was measured on (int8 "
                                             "kernels differ by CPU), into the bundle's manifest "
                                             "(metrics.<--record-as>); one --model only.")
@click.option("--record-as", default="attn_score_test", show_default=True,
              help="Manifest metrics key for --record (e.g. attn_score_sst2_test for a second test set).")
@click.option("--detreebank", is_flag=True,
              help="Score the texts as people write them: Penn-Treebank tokenization undone first (SST-2's \"it 's\" "
                   "-> \"it's\", runtime.tokenizer.join_treebank), through a temporary copy; recorded as such.")
def accuracy(models, data, text_column, label_column, repeats, record, record_as, detreebank):
    """Accuracy of `attn-score` (a real subprocess, from raw text) against the file's label column;
    with several --model, their accuracy and end-to-end throughput side by side."""
    import statistics

    import runtime
    from runtime.catalog import graphs_bytes
    from runtime.io.tables import TableReader

    if record and len(models) > 1:
        raise click.UsageError("--record takes one --model")
    source = data
    if detreebank:
        data = _detreebanked_copy(source, text_column, label_column)
    labels = [int(record_[label_column]) for _, record_ in TableReader(data).records()]
    runs = {model: [] for model in models}
    for _ in range(repeats):
        for model in models:
            predicted, elapsed, last_line = _attn_score_run(model, data, text_column)
            if len(predicted) != len(labels):
                raise click.ClickException(f"{model}: attn-score wrote {len(predicted)} rows for "
                                           f"{len(labels)} input rows")
            runs[model].append((predicted, elapsed))
            if len(models) == 1:
                click.echo(last_line)
    rows = []
    for model in models:
        predicted = runs[model][0][0]
        if any(other != predicted for other, _ in runs[model][1:]):
            raise click.ClickException(f"{model}: attn-score gave different labels in two runs of the same file")
        correct = sum(p == y for p, y in zip(predicted, labels))
        seconds = statistics.median(elapsed for _, elapsed in runs[model])
        size = graphs_bytes(runtime.resolve_bundle_path(model))
        rows.append((model, correct, seconds, size))
    if len(models) == 1:
        model, correct, seconds, _ = rows[0]
        click.echo(f"attn-score accuracy on {data}: {correct}/{len(labels)} = {100 * correct / len(labels):.2f} % "
                   f"({seconds:.0f} s end to end)")
    else:
        click.echo(f"machine: {machine()}; {len(labels):,} rows of {data}, {repeats} interleaved run(s) per model, "
                   f"median time")
        click.echo("| model | accuracy | model.onnx | rows/s end to end | × the first |")
        click.echo("|---|---|---|---|---|")
        for model, correct, seconds, size in rows:
            click.echo(f"| {model} | {100 * correct / len(labels):.2f} % ({correct:,}) | {size / 1e6:.1f} MB | "
                       f"{len(labels) / seconds:,.0f} | {rows[0][2] / seconds:.2f}× |")
    if record:
        from runtime.session import with_cpu_flags
        from trainer.converter import record_metrics

        folder = runtime.resolve_bundle_path(models[0])
        figure = {"data": str(source) + (" (de-treebanked)" if detreebank else ""), "rows": len(labels),
                  "accuracy": round(rows[0][1] / len(labels), 5)}
        record_metrics(folder, {record_as: with_cpu_flags(figure)})  # int8 figures move with the CPU's kernels


def _detreebanked_copy(data: str, text_column: str, label_column: str) -> str:
    """A JSONL copy of `data` (text, label) with join_treebank applied, in a temporary folder left for the run."""
    from runtime.io.tables import TableReader
    from runtime.tokenizer import join_treebank

    target = Path(tempfile.mkdtemp(prefix="attn-detreebank-")) / (Path(data).name.split(".")[0] + ".jsonl")
    with open(target, "w", encoding="utf-8") as handle:
        for _, row in TableReader(data).records():
            text = join_treebank(row[text_column] or "")
            handle.write(json.dumps({text_column: text, label_column: row[label_column]}) + "\n")
    return str(target)


def _bundle_language(bundle) -> str | None:
    """The bundle's language (runtime.catalog.languages_of), found by short name for a shipped folder."""
    import runtime
    from runtime.catalog import languages_of

    names = [name for name, folder in runtime.shipped_bundles().items() if folder.resolve() == bundle.path.resolve()]
    return languages_of(bundle.manifest, names[0] if names else None)


@main.command()
@click.option("--model", "models", multiple=True, default=["imdb"], show_default=True,
              help="Bundle folder or shipped short name; repeat to compare models side by side.")
@click.option("--failures", type=click.IntRange(0), default=0, show_default=True,
              help="Also print up to this many failing cases per test type (of the last model).")
@click.option("--json-out", type=click.Path(dir_okay=False), default=None, help="Also write the rates as JSON.")
def behaviour(models, failures, json_out):
    """Behavioural suite (CheckList-style): pass rate per test type (vocabulary, negation, contrast,
    invariance) of each sentiment bundle, side by side."""
    import runtime
    from bench.behaviour import TESTS, evaluate, expand

    cases = expand()
    table = {}
    for model in models:
        try:
            classifier = runtime.load(model)
        except (runtime.BundleError, OSError) as error:
            raise click.ClickException(str(error)) from None
        if not isinstance(classifier, runtime.Classifier):
            raise click.ClickException(f"{model}: not a sentiment bundle")
        language = _bundle_language(classifier.bundle)
        if language not in (None, "en"):
            raise click.ClickException(f"{model}: the behavioural suite is English; this bundle's "
                                       f"language is {language}")
        table[model] = evaluate(classifier, cases)
    click.echo(f"behavioural suite: {len(cases)} cases, {len(TESTS)} test types")
    click.echo("| test type | cases | " + " | ".join(models) + " |")
    click.echo("|---|---|" + "---|" * len(models))
    for name in [test.name for test in TESTS] + ["overall"]:
        first = table[models[0]][name]
        rates = " | ".join(f"{100 * table[m][name].rate:.1f} %" for m in models)
        label = f"**{name}**" if name == "overall" else name
        click.echo(f"| {label} | {first.cases} | {rates} |")
    if failures:
        for name, result in table[models[-1]].items():
            for line in result.failures[:failures]:
                click.echo(f"FAIL [{name}] {line}")
    if json_out:
        Path(json_out).write_text(json.dumps({m: {name: {"cases": r.cases, "passed": r.passed, "rate": round(r.rate, 4)}
                                                  for name, r in results.items()} for m, results in table.items()},
                                             indent=2))


@main.command()
@click.option("--model", "models", multiple=True, default=["imdb"], show_default=True,
              help="Bundle folder or shipped short name; repeat to compare bundles side by side.")
@click.option("--data", type=click.Path(exists=True), default="../shared/datasets/cad/dev.tsv.gz", show_default=True,
              help="CAD pairs (Sentiment, Text, batch_id): the dev split selects; keep any test split aside.")
def robustness(models, data):
    """Counterfactually revised reviews (CAD) through attn-score: accuracy on the originals, on the
    minimal-edit revisions, and both halves of a pair right, per bundle side by side."""
    from bench.robustness import attn_score_labels, pair_scores, read_pairs
    from runtime.errors import AttnError

    try:
        texts, labels, pair_of = read_pairs(data)
        table = {model: pair_scores(attn_score_labels(model, texts), labels, pair_of) for model in models}
    except AttnError as error:
        raise click.ClickException(str(error)) from None
    click.echo(f"robustness: {len(texts) // 2} CAD pairs of {data}, through attn-score")
    click.echo("| bundle | originals | revisions | both of a pair |")
    click.echo("|---|---|---|---|")
    for model, scores in table.items():
        click.echo(f"| {model} | {100 * scores.originals:.1f} % | {100 * scores.revisions:.1f} % | "
                   f"{100 * scores.both:.1f} % |")


@main.command()
@click.option("--bundle", type=click.Path(exists=True, file_okay=False), required=True,
              help="Translation bundle with its training/ folder (attn-export train-translator keeps it).")
@click.option("--data", type=click.Path(exists=True), default=None,
              help="Sentence-pair file (default: the one the bundle records).")
@click.option("--limit", type=int, default=600, show_default=True, help="Test-split sentences decoded per variant.")
@click.option("--repeats", type=int, default=3, show_default=True, help="Timed repeats (medians are reported).")
@click.option("--threads", type=int, default=0, show_default=True, help="Threads for every variant (0 = all cores).")
@click.option("--latency-sentences", type=int, default=50, show_default=True, help="Sentences timed one at a time.")
@click.option("--json-out", type=click.Path(dir_okay=False), default=None, help="Also write the figures as JSON.")
def translator(bundle, data, limit, repeats, threads, latency_sentences, json_out):
    """Keras greedy (step by step) vs our greedy vs our beam 4, same sentences, one run."""
    from bench import translator as bench_translator

    threads = threads or os.cpu_count()
    results = bench_translator.run(bundle, data, limit, repeats, threads, latency_sentences)
    bench_translator.report(results, machine(), threads, repeats)
    if json_out:
        Path(json_out).write_text(json.dumps({"machine": machine(), "threads": threads, "results": results}, indent=2))


@main.command("translation-quality")
@click.option("--bundle", "bundles", multiple=True, type=click.Path(exists=True, file_okay=False), required=True,
              help="Translation bundle(s) whose manifest records the pairs file and split seed.")
@click.option("--data", type=click.Path(exists=True), default=None,
              help="Sentence-pair file (default: the one recorded).")
@click.option("--beam-size", type=int, default=4, show_default=True)
@click.option("--bleu", is_flag=True, help="Also translate the whole test split for cased BLEU (sacrebleu defaults).")
@click.option("--copy/--no-copy", default=True, show_default=True,
              help="Numbers and unknown words copied through (runtime.models.copying), or the model's own words.")
@click.option("--json-out", type=click.Path(dir_okay=False), default=None, help="Also write the figures as JSON.")
def translation_quality(bundles, data, beam_size, bleu, copy, json_out):
    """Digit-copy rate on the test split's sentences with digits (and cased BLEU on all of it)."""
    from bench.translation_quality import measure

    results = []
    for bundle in bundles:
        result = measure(bundle, data, beam_size, bleu, copy)
        results.append(result)
        bleu_text = f"; BLEU {result['bleu']:.2f} on {result['sentences']:,} sentences" if bleu else ""
        click.echo(f"{bundle}: beam {beam_size}, copy {'on' if copy else 'off'}: digits kept in "
                   f"{100 * result['digit_copy_rate']:.1f} % of {result['digit_sentences']} test sentences with digits"
                   f"{bleu_text} ({result['seconds']:.0f} s; {machine()}; load average {os.getloadavg()[0]:.1f})")
        for source, translation in result["misses"]:
            click.echo(f"  missed: {source} -> {translation}")
    if json_out:
        Path(json_out).write_text(json.dumps(results, ensure_ascii=False, indent=2))


def report(results, sample, machine_line, threads, limit, repeats, fpt):
    names = {"keras": "(a) Keras predict, padded", "keras-bucketed": "(a') Keras, length-bucketed",
             "loop": "(b) tf2onnx Loop", "fp32": "(c) bundle fp32", "int8": "(d) bundle int8",
             "tflite": "(e) TensorFlow Lite (LiteRT), same Keras model"}
    base = results["keras"]
    click.echo(f"machine: {machine_line}; threads {threads}; {limit} IMDB test reviews "
               f"(median {sample['median_tokens']} tokens); medians of {repeats} repeats")
    click.echo("| variant | load s | reviews/s | x (a) | batch-1 p50 ms | p99 ms | peak RSS MB | accuracy |")
    click.echo("|---|---|---|---|---|---|---|---|")
    for key, label in names.items():
        if key not in results:
            continue
        r = results[key]
        if "error" in r:
            click.echo(f"| {label} | {r['error']} | | | | | | |")
            continue
        click.echo(f"| {label} | {r['load_s']:.2f} | {r['throughput']:.0f} | "
                   f"{r['throughput'] / base['throughput']:.1f} | "
                   f"{r['latency_p50_ms']:.1f} | {r['latency_p99_ms']:.1f} | {r['peak_rss_mb']:.0f} | "
                   f"{100 * r['accuracy']:.2f} % |")
    click.echo(f"roofline: sgemm {results['sgemm_gflops']:.0f} GFLOP/s (numpy, 2048^3); (c) at batch 64 of "
               f"{len(sample['full_length'])} max-length reviews: "
               f"{results['fp32'].get('gflops_batch64', float('nan')):.1f} GFLOP/s ({fpt / 1e3:.0f} kFLOP per token)")
    notes = results.get("tflite", {}).get("notes")
    if notes:
        click.echo(f"(e) ran as: {notes['how']} ({notes['megabytes']} MB); failed first: "
                   + " | ".join(notes["failed_first"]))
    click.echo("targets:")
    for description, measure, direction, goal in TARGETS:
        try:
            value = measure(results)
        except KeyError:  # a variant was not run (an int8 bundle has no separate int8 variant)
            continue
        ok = value >= goal if direction == ">=" else value <= goal
        click.echo(f"  {'MET ' if ok else 'MISS'} {description} = {value:.2f} (target {direction} {goal:g})")


from bench.cli_bench import cli as _cli  # noqa: E402  (python -m bench cli: attn-score end to end vs in-memory)

main.add_command(_cli)
from bench.web import web as _web  # noqa: E402  (selenium is imported only when it runs)

main.add_command(_web)

from bench.distributed import distributed  # noqa: E402  (plain attn-score vs --engine ray)

main.add_command(distributed)
from bench.text_graph import text_graph  # noqa: E402  (python -m bench text-graph: tokenizer in the graph vs Python)

main.add_command(text_graph)

from bench.serve import serve  # noqa: E402  (attn-serve under load; httpx and the server run in their own processes)

main.add_command(serve)

if __name__ == "__main__":
    main()
