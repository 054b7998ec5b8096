"""attn-export: train a classifier and/or export it as an ONNX bundle.

The commands parse options and report; the work is done by trainer.fit and trainer.export.
"""

from __future__ import annotations

import os
import sys
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")  # keep TensorFlow's C++ chatter (cuInit on CPU machines) off stderr

import click

from runtime.bundle import BundleError, sha256_of
from runtime.io import InputError
from runtime.tokenizer import Tokenizer, TokenizerSpec
from trainer.console import TrainGroup, chance_warning

ATTENTION_KINDS = ("dot", "scaled_dot", "general", "concat", "location")


def _fail(error: Exception) -> None:
    raise click.ClickException(str(error))


def _export(model, config, tokenizer, out, opset, metrics, data, quantize=None, gate_data=None, force=False):
    from trainer.export import export_bundle

    return export_bundle(model, config, tokenizer, out, opset=opset, metrics=metrics, data=data, quantize=quantize,
                         gate_data=gate_data, force=force, log=lambda line: click.echo(line, err=True))


_QUANTIZE = click.option("--quantize", type=click.Choice(["int8"]), default=None,
                         help="Ship a dynamically quantized int8 graph; refused if validation accuracy drops more "
                              "than 0.5 points (unless --force).")
_FORCE = click.option("--force", is_flag=True,
                      help="Overwrite a non-empty --out folder, and keep an int8 graph that fails the accuracy gate.")


@click.group(cls=TrainGroup, context_settings={"help_option_names": ["-h", "--help"]})
def main() -> None:
    """Train BiLSTM + attention classifiers and export them as fast ONNX bundles
    (fused LSTM ops with sequence lengths, parity-checked against Keras)."""


@main.command()
@click.option("--train-data", required=True, type=click.Path(), help="CSV/TSV/JSONL file (.gz ok) or an aclImdb folder.")
@click.option("--text-column", default="text", show_default=True, help="Column holding the text.")
@click.option("--label-column", default="label", show_default=True, help="Column holding the label.")
@click.option("--label-map", default=None, help="Label values to 0/1, e.g. 'neg=0,pos=1' (default: 0/1, neg/pos, negative/positive).")
@click.option("--quoting", type=click.Choice(["auto", "csv", "none"]), default="auto", show_default=True,
              help="Quote processing; auto = csv for CSV, none for TSV.")
@click.option("--test-data", type=click.Path(), default=None,
              help="Optional held-out file, scored once after training and recorded; never used to select.")
@click.option("--extra-train-data", type=click.Path(), default=None,
              help="Another labelled file whose rows are all added to the training rows (e.g. SST-2 phrases "
                   "beside IMDB reviews; see --join-clitics). Not split, not limited.")
@click.option("--extra-validation-data", type=click.Path(), default=None,
              help="Another labelled file whose rows are all added to the validation rows that select the epoch "
                   "(e.g. SST-2 dev). --refit never trains on them.")
@click.option("--extra-text-column", default=None, help="Text column of the extra files (default: --text-column).")
@click.option("--extra-label-column", default=None, help="Label column of the extra files (default: --label-column).")
@click.option("--attention", type=click.Choice(ATTENTION_KINDS), default="concat", show_default=True, help="Attention score function.")
@click.option("--epochs", type=click.IntRange(1), default=3, show_default=True, help="Training epochs (the best validation epoch is kept).")
@click.option("--patience", type=click.IntRange(1), default=None, help="Stop after this many epochs without a better validation accuracy.")
@click.option("--batch-size", type=click.IntRange(1), default=256, show_default=True, help="Rows per training batch.")
@click.option("--learning-rate", type=click.FloatRange(0, min_open=True), default=1e-3, show_default=True, help="Adam learning rate.")
@click.option("--max-len", type=click.IntRange(1), default=500, show_default=True, help="Tokens kept per text.")
@click.option("--truncation", type=click.Choice(["pre", "post"]), default="pre", show_default=True,
              help="Which side loses tokens beyond --max-len: pre keeps the ending, post the beginning.")
@click.option("--tokenizer-mode", type=click.Choice(["word", "sentencepiece"]), default="word", show_default=True,
              help="word: regex words; sentencepiece: a unigram subword model trained on the training rows "
                   "(for Korean and other agglutinative languages; --vocab-size sets its size).")
@click.option("--punctuation", type=click.Choice(["strip", "keep"]), default="strip", show_default=True,
              help="Drop punctuation, or keep each mark as a token.")
@click.option("--join-clitics", is_flag=True,
              help="Tokenizer maps treebank-tokenized text to raw text (\"does n't\" -> \"doesn't\", \"-lrb-\" -> \"(\"), "
                   "so SST-2-style data and raw text give the same tokens; recorded in the bundle's tokenizer.")
@click.option("--vocab-size", type=click.IntRange(3), default=10_000, show_default=True, help="Vocabulary size, padding and OOV included.")
@click.option("--embedding-dim", type=click.IntRange(1), default=128, show_default=True, help="Embedding width.")
@click.option("--lstm-units", type=click.IntRange(1), default=64, show_default=True, help="Units per LSTM direction.")
@click.option("--lstm-layers", type=click.IntRange(1), default=2, show_default=True, help="Stacked bidirectional LSTM layers.")
@click.option("--attention-units", type=click.IntRange(1), default=64, show_default=True, help="Hidden units of concat attention.")
@click.option("--dense-units", type=click.IntRange(1), default=20, show_default=True, help="Units of the relu layer.")
@click.option("--dropout", type=click.FloatRange(0, 1, max_open=True), default=0.5, show_default=True, help="Dropout after the relu layer.")
@click.option("--embedding-dropout", type=click.FloatRange(0, 1, max_open=True), default=0.0, show_default=True,
              help="Spatial dropout on the embeddings (drops whole embedding channels).")
@click.option("--validation-split", type=click.FloatRange(0, 1, min_open=True, max_open=True), default=0.1, show_default=True,
              help="Fraction of the (shuffled) training rows held out for validation.")
@click.option("--limit", type=click.IntRange(2), default=None, help="Use only this many rows of the shuffled training data.")
@click.option("--seed", type=int, default=0, show_default=True, help="Seed for the shuffle, initialisation and dropout.")
@click.option("--split-seed", type=int, default=None, help="Seed of the train/validation split only (default: --seed).")
@click.option("--tokenizer", "tokenizer_path", type=click.Path(dir_okay=False), default=None,
              help="Use this tokenizer JSON (e.g. another bundle's training/tokenizer.json) instead of fitting one, "
                   "so the new model shares its ids (needed to combine models).")
@click.option("--members", type=click.IntRange(1), default=1, show_default=True,
              help="Train this many networks (seeds --seed, --seed+1, …) on one tokenizer and ship their average "
                   "as one graph (an ensemble: N× the inference cost).")
@click.option("--refit", is_flag=True,
              help="After choosing the best epoch count on validation, train again from scratch on all rows "
                   "(train + validation) for that many epochs and export that model.")
@click.option("--opset", type=click.IntRange(14), default=17, show_default=True, help="ONNX opset of the exported graph.")
@_QUANTIZE
@_FORCE
@click.option("--out", required=True, type=click.Path(file_okay=False), help="Bundle folder to write.")
def train(**options) -> None:
    """Train a classifier on labelled text and write an ONNX bundle to --out.

    The folder gets model.onnx and manifest.json (the bundle) and training/ with the Keras model,
    tokenizer and history, which `attn-export convert` can re-export."""
    from trainer.data import load_labelled, parse_label_map, read_table, shuffle_split
    from trainer.export import ExportError, prepare_out_dir
    from trainer.fit import accuracy, predict_probabilities, save_training_outputs, train_ensemble

    from trainer.models.classifier import ClassifierConfig

    started = time.perf_counter()
    try:
        out = prepare_out_dir(options["out"], options["force"])
        table = dict(text_column=options["text_column"], label_column=options["label_column"],
                     label_map=parse_label_map(options["label_map"]), quoting=options["quoting"])
        data = load_labelled(options["train_data"], **table)
        split_seed = options["seed"] if options["split_seed"] is None else options["split_seed"]
        train_rows, validation_rows = shuffle_split(data, options["validation_split"], split_seed, options["limit"])
        own_validation_rows = validation_rows
        extra_table = {**table, "text_column": options["extra_text_column"] or options["text_column"],
                       "label_column": options["extra_label_column"] or options["label_column"]}
        extra = {kind: read_table(options[f"extra_{kind}_data"], **extra_table)
                 for kind in ("train", "validation") if options[f"extra_{kind}_data"]}
        if "train" in extra:
            train_rows = train_rows + extra["train"]
        if "validation" in extra:
            validation_rows = validation_rows + extra["validation"]
        test = read_table(options["test_data"], **table) if options["test_data"] else None
        given = Tokenizer.load(options["tokenizer_path"]) if options["tokenizer_path"] else None
    except (InputError, ExportError, ValueError, OSError) as error:
        _fail(error)
    if given is not None and given.spec.max_len != options["max_len"]:
        click.echo(f"--tokenizer: using its max length {given.spec.max_len} (not --max-len {options['max_len']})", err=True)
        options["max_len"] = given.spec.max_len

    config = ClassifierConfig(
        vocab_size=options["vocab_size"], max_len=options["max_len"], embedding_dim=options["embedding_dim"],
        lstm_units=options["lstm_units"], lstm_layers=options["lstm_layers"], attention=options["attention"],
        attention_units=options["attention_units"], dense_units=options["dense_units"], dropout=options["dropout"],
        embedding_dropout=options["embedding_dropout"], members=options["members"],
        learning_rate=options["learning_rate"], batch_size=options["batch_size"], epochs=options["epochs"], seed=options["seed"],
    )
    spec = TokenizerSpec(max_len=options["max_len"], mode=options["tokenizer_mode"], truncation=options["truncation"],
                         punctuation=options["punctuation"], join_clitics=options["join_clitics"])
    verbose = 1 if sys.stderr.isatty() else 2
    result = train_ensemble(train_rows, validation_rows, config, spec, patience=options["patience"], verbose=verbose,
                            log=lambda line: click.echo(line, err=True), tokenizer=given)
    config = result.config
    metrics = {"validation_accuracy": round(result.validation_accuracy, 5), "best_epoch": result.best_epoch,
               "train_seconds": round(result.elapsed_s, 1), "history": result.history}
    if config.members > 1:
        metrics["members"] = {"epochs": result.member_epochs, "validation_accuracy": [
            round(a, 5) for a in result.history["member_validation_accuracy"]]}
    if "validation" in extra:  # the pooled figure selects; each part is recorded too
        metrics["validation_accuracy_by_source"] = {
            rows.source: round(accuracy(predict_probabilities(result.model, result.tokenizer, rows.texts), rows.labels), 5)
            for rows in (own_validation_rows, extra["validation"])}
        click.echo(f"validation accuracy by source: {metrics['validation_accuracy_by_source']}", err=True)
    if options["refit"]:
        from dataclasses import replace

        # the extra validation rows (e.g. SST-2 dev) stay held out: they are a dev set, not training data
        everything = train_rows + own_validation_rows
        epochs = result.member_epochs
        held = f" (--extra-validation-data's {len(extra['validation'])} rows held out)" if "validation" in extra else ""
        click.echo(f"refit: {', '.join(map(str, epochs))} epoch(s) on all {len(everything)} rows{held}", err=True)
        result = train_ensemble(everything, None, replace(config, vocab_size=options["vocab_size"]), spec, epochs=epochs,
                                verbose=verbose, log=lambda line: click.echo(line, err=True), tokenizer=given)
        config = result.config
        metrics["refit"] = {"rows": len(everything), "epochs": epochs if config.members > 1 else epochs[0],
                            "train_seconds": round(result.elapsed_s, 1),
                            "note": "validation_accuracy and best_epoch come from the selection run; the shipped "
                                    "model was then trained on train + validation"
                                    + (" (not on the extra validation rows)" if "validation" in extra else "")}
    if test is not None:
        probabilities = predict_probabilities(result.model, result.tokenizer, test.texts)
        metrics["test_accuracy"] = round(accuracy(probabilities, test.labels), 5)
        metrics["test_rows"] = len(test)
        metrics["test_data"] = str(options["test_data"])
    provenance = {
        "train": str(options["train_data"]),
        "train_sha256": sha256_of(options["train_data"]) if Path(options["train_data"]).is_file() else None,
        "train_rows": len(train_rows), "validation_rows": len(validation_rows),
        "validation_split": options["validation_split"], "limit": options["limit"], "split_seed": split_seed,
        **{f"extra_{kind}": {"file": str(options[f"extra_{kind}_data"]), "rows": len(rows),
                             "sha256": sha256_of(options[f"extra_{kind}_data"])} for kind, rows in extra.items()},
        "command": "attn-export " + " ".join(sys.argv[1:]),
    }
    save_training_outputs(result, out, {"metrics": metrics, "data": provenance})
    try:
        _export(result.model, config, result.tokenizer, out, options["opset"], metrics, provenance, options["quantize"],
                (validation_rows.texts, validation_rows.labels), options["force"])
    except (ExportError, BundleError) as error:
        _fail(error)
    test_note = f", test accuracy {metrics['test_accuracy']:.4f}" if test is not None else ""
    click.echo(
        f"validation accuracy {metrics['validation_accuracy']:.4f} (epoch {metrics['best_epoch']})"
        f"{' then refit on all rows' if options['refit'] else ''}{test_note}, "
        f"elapsed {time.perf_counter() - started:.0f} s, bundle {out}", err=True
    )
    warning = chance_warning(metrics["validation_accuracy"], validation_rows.labels)
    if warning:
        click.echo(warning, err=True)


@main.command()
@click.argument("keras_model", type=click.Path())
@click.option("--tokenizer", "tokenizer_path", required=True, type=click.Path(), help="Tokenizer JSON saved with the model.")
@click.option("--opset", type=click.IntRange(14), default=17, show_default=True, help="ONNX opset of the exported graph.")
@_QUANTIZE
@click.option("--validation-data", type=click.Path(), default=None,
              help="Labelled file (text, label columns) for the int8 gate. Default: the validation split recorded "
                   "in training/history.json, carved again from its training file.")
@_FORCE
@click.option("--out", required=True, type=click.Path(file_okay=False), help="Bundle folder to write.")
def convert(keras_model: str, tokenizer_path: str, opset: int, quantize: str | None, validation_data: str | None,
            force: bool, out: str) -> None:
    """Export an existing trained Keras classifier (.keras) as an ONNX bundle."""
    import json

    import keras

    import trainer.attention  # noqa: F401  (registers the attention layers for loading)
    from trainer.export import ExportError, prepare_out_dir
    from trainer.models.classifier import config_from_model

    try:
        tokenizer = Tokenizer.load(tokenizer_path)
        if not Path(keras_model).is_file():
            raise ExportError(f"{keras_model}: no such model file")
        try:
            model = keras.saving.load_model(keras_model)
        except Exception as error:  # Keras raises many types for a corrupt archive
            raise ExportError(f"{keras_model}: cannot load the Keras model ({type(error).__name__}: {str(error)[:200]})") from None
        try:
            config = config_from_model(model)
        except ValueError as error:
            raise ExportError(f"{keras_model}: {error}") from None
        history = Path(keras_model).with_name("history.json")
        recorded = json.loads(history.read_text()) if history.is_file() else {}
        gate_data = _gate_data(validation_data, recorded.get("data", {})) if quantize else None
        target = prepare_out_dir(out, force)
        metrics = {k: v for k, v in recorded.get("metrics", {}).items() if k != "int8_gate"}
        _export(model, config, tokenizer, target, opset, metrics, recorded.get("data", {"keras_model": str(keras_model)}),
                quantize, gate_data, force)
    except (ExportError, BundleError, InputError, ValueError, FileNotFoundError) as error:
        _fail(error)
    click.echo(f"bundle {out}", err=True)


@main.command()
@click.argument("bundles", nargs=-1, required=True, type=click.Path(file_okay=False))
@click.option("--opset", type=click.IntRange(14), default=17, show_default=True, help="ONNX opset of the exported graph.")
@_FORCE
@click.option("--out", required=True, type=click.Path(file_okay=False), help="Bundle folder to write.")
def combine(bundles: tuple[str, ...], opset: int, force: bool, out: str) -> None:
    """Combine trained classifier bundles (single models or ensembles, each with its training/
    folder) into one ensemble bundle whose outputs are the mean of all their networks. They must
    share one tokenizer (train the later ones with `--tokenizer`) and one architecture."""
    from trainer.export import ExportError, prepare_out_dir
    from trainer.fit import combine_trained

    try:
        ensemble, config, tokenizer, sources = combine_trained(bundles)
        target = prepare_out_dir(out, force)
        data = {"combined_from": [s["bundle"] for s in sources], "command": "attn-export " + " ".join(sys.argv[1:])}
        _export(ensemble, config, tokenizer, target, opset, {"combined_from": sources}, data, force=force)
    except (ExportError, BundleError, ValueError, OSError) as error:
        _fail(error)
    click.echo(f"{config.members} networks from {len(bundles)} bundles, bundle {out}", err=True)


@main.command("train-translator")
@click.option("--pairs", required=True, type=click.Path(), help="Sentence-pair table, e.g. ../shared/datasets/tatoeba/spa-eng.tsv.gz.")
@click.option("--source-column", default="spa", show_default=True, help="Column of the source language.")
@click.option("--target-column", default="eng", show_default=True, help="Column of the target language.")
@click.option("--style", type=click.Choice(["luong", "bahdanau", "none"]), default="luong", show_default=True,
              help="Attention: luong (query sₜ), bahdanau (query sₜ₋₁, context fed to the decoder), none (baseline).")
@click.option("--score", type=click.Choice(["dot", "general", "concat"]), default="general", show_default=True,
              help="Luong score function (bahdanau always uses concat).")
@click.option("--epochs", type=click.IntRange(1), default=10, show_default=True, help="Training epochs (best validation loss kept).")
@click.option("--patience", type=click.IntRange(1), default=2, show_default=True, help="Early stopping patience (epochs).")
@click.option("--batch-size", type=click.IntRange(1), default=128, show_default=True, help="Pairs per batch.")
@click.option("--learning-rate", type=click.FloatRange(0, min_open=True), default=2e-3, show_default=True, help="Adam learning rate.")
@click.option("--embedding-dim", type=click.IntRange(1), default=128, show_default=True, help="Embedding width (both sides).")
@click.option("--units", type=click.IntRange(1), default=128, show_default=True, help="Encoder units per direction (decoder: twice).")
@click.option("--dropout", type=click.FloatRange(0, 1, max_open=True), default=0.2, show_default=True,
              help="Dropout on source embeddings, encoder states and decoder outputs while training.")
@click.option("--source-vocab", type=click.IntRange(5), default=12_000, show_default=True, help="Source vocabulary size.")
@click.option("--target-vocab", type=click.IntRange(5), default=8_000, show_default=True, help="Target vocabulary size.")
@click.option("--max-len", type=click.IntRange(2), default=40, show_default=True, help="Most tokens per source and target sentence.")
@click.option("--validation-fraction", type=click.FloatRange(0, 1, min_open=True, max_open=True), default=0.05, show_default=True)
@click.option("--test-fraction", type=click.FloatRange(0, 1, min_open=True, max_open=True), default=0.05, show_default=True)
@click.option("--limit", type=click.IntRange(2), default=None, help="Train on this many (shuffled) training pairs only.")
@click.option("--seed", type=int, default=0, show_default=True, help="Seed for the split, initialisation and shuffling.")
@click.option("--beam-size", type=click.IntRange(1), default=4, show_default=True, help="Beam for the test-split BLEU.")
@click.option("--opset", type=click.IntRange(14), default=17, show_default=True, help="ONNX opset.")
@click.option("--force", is_flag=True, help="Overwrite a non-empty --out folder.")
@click.option("--out", required=True, type=click.Path(file_okay=False), help="Bundle folder to write.")
def train_translator_command(**options) -> None:
    """Train a seq2seq translator, export encoder.onnx + decoder_step.onnx, and report BLEU/chrF
    on the held-out test split (carved by sentence group; never used to select)."""
    import numpy as np

    import runtime
    from trainer.data import read_pairs, split_pairs
    from trainer.evaluate_seq2seq import evaluate
    from trainer.export import ExportError, prepare_out_dir
    from trainer.export_seq2seq import export_translator_bundle
    from trainer.fit_seq2seq import train_translator
    from trainer.models.seq2seq import Seq2SeqConfig

    started = time.perf_counter()
    try:
        out = prepare_out_dir(options["out"], options["force"])
        pairs = read_pairs(options["pairs"], options["source_column"], options["target_column"])
        train_pairs, validation, test = split_pairs(pairs, options["validation_fraction"], options["test_fraction"], options["seed"])
        if options["limit"]:
            train_pairs = train_pairs.take(np.random.default_rng(options["seed"]).permutation(len(train_pairs))[: options["limit"]])
    except (InputError, ExportError, ValueError) as error:
        _fail(error)
    config = Seq2SeqConfig(
        source_vocab=options["source_vocab"], target_vocab=options["target_vocab"], max_source_len=options["max_len"],
        max_target_len=options["max_len"], embedding_dim=options["embedding_dim"], units=options["units"],
        dropout=options["dropout"],
        style=options["style"], score=options["score"], learning_rate=options["learning_rate"],
        batch_size=options["batch_size"], epochs=options["epochs"], seed=options["seed"],
    )
    result = train_translator(train_pairs, validation, config, patience=options["patience"],
                              verbose=1 if sys.stderr.isatty() else 2, log=lambda line: click.echo(line, err=True))
    provenance = {"pairs": str(options["pairs"]), "pairs_sha256": sha256_of(options["pairs"]),
                  "direction": f"{options['source_column']}->{options['target_column']}", "train_pairs": len(train_pairs),
                  "validation_pairs": len(validation), "test_pairs": len(test), "split_seed": options["seed"],
                  "command": "attn-export " + " ".join(sys.argv[1:])}
    metrics = {"validation_loss": round(result.validation_loss, 4), "best_epoch": result.best_epoch,
               "train_seconds": round(result.elapsed_s, 1), "history": result.history}
    try:
        export_translator_bundle(result, out, opset=options["opset"], metrics=metrics, data=provenance,
                                 parity_sentences=validation.sources[:50], log=lambda line: click.echo(line, err=True))
        report = evaluate(runtime.load(out, provider="cpu"), test, beam_size=options["beam_size"])
    except (ExportError, BundleError) as error:
        _fail(error)
    _record_metrics(out, {"test": report})
    click.echo(f"validation loss {result.validation_loss:.4f} (epoch {result.best_epoch}), test BLEU {report['bleu']:.2f}, "
               f"chrF {report['chrf']:.2f} (beam {options['beam_size']}, {len(test)} pairs), "
               f"elapsed {time.perf_counter() - started:.0f} s, bundle {out}", err=True)


@main.command("compare-translators", cls=click.Command)  # reads bundles: no TensorFlow
@click.argument("bundles", nargs=-1, required=True, type=click.Path(file_okay=False))
@click.option("--name", "names", multiple=True, help="Label per bundle, in order (default: the bundle's attention style).")
@click.option("--plot", type=click.Path(dir_okay=False), default=None, help="Write BLEU by source length as a PNG (needs matplotlib).")
def compare_translators(bundles: tuple[str, ...], names: tuple[str, ...], plot: str | None) -> None:
    """Print a markdown table of the test-split BLEU / chrF (overall and by source length) that
    train-translator recorded in each bundle, e.g. attention vs the no-attention baseline; refuses
    bundles evaluated on different test splits."""
    from runtime.bundle import Bundle
    from trainer.evaluate_seq2seq import comparison_table, plot_bleu_by_length, test_reports

    if names and len(names) != len(bundles):
        _fail(ValueError(f"{len(names)} --name value(s) for {len(bundles)} bundle(s)"))
    try:
        manifests = [Bundle.load(b).manifest for b in bundles]
        labels = list(names) or [m.get("attention", Path(b).name) for m, b in zip(manifests, bundles)]
        if len(set(labels)) != len(labels):
            raise ValueError(f"two bundles share the label {labels}; give each a --name")
        reports = test_reports(dict(zip(labels, manifests)))
    except (BundleError, ValueError) as error:
        _fail(error)
    click.echo(comparison_table(reports), nl=False)
    if plot:
        try:
            plot_bleu_by_length(reports, plot)
        except ImportError:
            _fail(ImportError("--plot needs matplotlib: pip install 'attn-onnx[plot]'"))
        click.echo(f"plot {plot}", err=True)


def _record_metrics(folder: Path, extra: dict) -> None:
    """Add figures measured on the finished bundle to its manifest (re-validated on write)."""
    import json

    from runtime.bundle import MANIFEST, write_manifest

    manifest = json.loads((Path(folder) / MANIFEST).read_text(encoding="utf-8"))
    manifest["metrics"].update(extra)
    write_manifest(folder, manifest)


def _gate_data(validation_data: str | None, provenance: dict):
    """(texts, labels) for the int8 gate: --validation-data, else the recorded validation split."""
    from trainer.data import load_labelled, read_table, shuffle_split
    from trainer.export import ExportError

    if validation_data:
        data = read_table(validation_data)
        return data.texts, data.labels
    if not provenance.get("train"):
        raise ExportError("--quantize int8 needs --validation-data (no training/history.json next to the model)")
    _, validation = shuffle_split(load_labelled(provenance["train"]), provenance["validation_split"],
                                  provenance["split_seed"], provenance.get("limit"))
    return validation.texts, validation.labels


if __name__ == "__main__":
    main()
