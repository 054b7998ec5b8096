"""attn-export: train a classifier and/or export it as an ONNX bundle.

The commands parse options and report; the work is done by trainer.fit and trainer.export.
"""

from __future__ import annotations

import sys
import time
from dataclasses import fields, replace
from pathlib import Path

import click

from runtime.catalog import version
from runtime.errors import AttnError, InputError
from runtime.tokenizer import LOWERCASE_MAPPINGS, MODES, Tokenizer, TokenizerSpec
from trainer.config import KINDS, SCORES, STYLES, TOKENIZER_MODES, ClassifierConfig, Seq2SeqConfig
from trainer.console import TrainGroup, chance_warning
from trainer.converter import DEFAULT_OPSET
from trainer.distill import DEFAULT_ALPHA, DEFAULT_AUGMENT_DROP, DEFAULT_TEMPERATURE

# Every default below comes from these dataclasses (one source per setting; trainer/config.py).
C, S, T = ClassifierConfig, Seq2SeqConfig, TokenizerSpec


class Commands(TrainGroup):
    """The one place attn-export reports errors: anything under the `AttnError` root (bad input,
    bundle, export, parity, quantization), and file-system errors, become one line and exit 1;
    anything else is a bug and keeps its traceback."""

    def invoke(self, ctx: click.Context):
        try:
            return super().invoke(ctx)
        except (AttnError, OSError) as error:
            raise click.ClickException(str(error)) from None


def _export(model, config, tokenizer, out, opset, metrics, data, quantize=None, gate_data=None, force=False):
    from trainer.export import export_bundle

    return export_bundle(model, config, tokenizer, out, opset=opset, metrics=metrics, data=data, quantize=quantize,
                         gate_data=gate_data, force=force, log=lambda line: click.echo(line, err=True))


_QUANTIZE = click.option("--quantize", type=click.Choice(["int8"]), default=None,
                         help="Ship a dynamically quantized int8 graph; refused if validation accuracy drops more "
                              "than 0.5 points (unless --force).")
_FORCE = click.option("--force", is_flag=True,
                      help="Overwrite a non-empty --out folder (and keep an int8 graph that fails the accuracy gate).")
_OPSET = click.option("--opset", type=click.IntRange(14), default=DEFAULT_OPSET, show_default=True,
                      help="ONNX opset of the exported graphs.")
_OUT = click.option("--out", required=True, type=click.Path(file_okay=False), help="Bundle folder to write.")


@click.group(cls=Commands, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(version(), "--version", prog_name="attn-export", message="%(prog)s (attn-onnx) %(version)s")
def main() -> None:
    """Train BiLSTM + attention classifiers and export them as fast ONNX bundles
    (fused LSTM ops with sequence lengths, parity-checked against Keras)."""


_CLASSIFIER_OPTIONS = [  # train and distill: data, split, architecture, tokenizer fitting, training
    click.option("--train-data", required=True, type=click.Path(),
                 help="CSV/TSV/JSONL file (.gz ok) or an aclImdb folder."),
    click.option("--text-column", default="text", show_default=True, help="Column holding the text."),
    click.option("--label-column", default="label", show_default=True, help="Column holding the label."),
    click.option("--label-map", default=None,
                 help="Label values to 0/1, e.g. 'neg=0,pos=1' (default: 0/1, neg/pos, negative/positive)."),
    click.option("--quoting", type=click.Choice(["auto", "csv", "none"]), default="auto", show_default=True,
                 help="Quote processing; auto = csv for CSV, none for TSV."),
    click.option("--test-data", type=click.Path(), default=None,
                 help="Optional held-out file, scored once after training and recorded; never used to select."),
    click.option("--extra-train-data", type=click.Path(), multiple=True,
                 help="Another labelled file whose rows are all added to the training rows (e.g. SST-2 phrases "
                      "beside IMDB reviews; see --join-clitics). Not split, not limited. Repeatable."),
    click.option("--extra-train-repeat", type=click.IntRange(1), multiple=True,
                 help="Copies of each --extra-train-data file's rows, one per file in order (default 1 each), "
                      "e.g. to weigh 3,414 CAD pairs beside 90,000 other rows."),
    click.option("--extra-validation-data", type=click.Path(), multiple=True,
                 help="Another labelled file whose rows are all added to the validation rows that select the epoch "
                      "(e.g. SST-2 dev). --refit never trains on them. Repeatable."),
    click.option("--extra-text-column", default=None,
                 help="Text column of the extra files (default: --text-column); comma-separated candidates, the "
                      "first a file has is read (e.g. 'sentence,Text' for SST-2 and CAD)."),
    click.option("--extra-label-column", default=None,
                 help="Label column of the extra files (default: --label-column); comma-separated candidates."),
    click.option("--detreebank-extra", is_flag=True,
                 help="Undo Penn-Treebank tokenization in the extra files (SST-2: \"does n't\" -> \"doesn't\", "
                      "\"-lrb-\" -> \"(\") before tokenizing, so the bundle's tokenizer needs no --join-clitics "
                      "(a spec the in-graph text tokenizer can compute)."),
    click.option("--extra-pair-column", default=None,
                 help="Column of the extra training files whose shared values keep rows in one batch (CAD's "
                      "batch_id: both halves of a counterfactual pair train side by side); files without it are "
                      "batched as before."),
    click.option("--pair-loss-weight", type=click.FloatRange(0), default=C.pair_loss_weight, show_default=True,
                 help="With --extra-pair-column: add this × a pairwise term on each counterfactual pair in a batch "
                      "(two rows of one group, opposite labels): softplus(logit of the negative half − logit of the "
                      "positive half), so the edit that flips the label must move the score. 0: labels only."),
    click.option("--attention", type=click.Choice(KINDS), default=C.attention, show_default=True,
                 help="Attention score function."),
    click.option("--epochs", type=click.IntRange(1), default=C.epochs, show_default=True,
                 help="Training epochs (the best validation epoch is kept)."),
    click.option("--patience", type=click.IntRange(1), default=None,
                 help="Stop after this many epochs without a better validation accuracy."),
    click.option("--batch-size", type=click.IntRange(1), default=C.batch_size, show_default=True,
                 help="Rows per training batch."),
    click.option("--learning-rate", type=click.FloatRange(0, min_open=True), default=C.learning_rate, show_default=True,
                 help="Adam learning rate."),
    click.option("--max-len", type=click.IntRange(1), default=C.max_len, show_default=True,
                 help="Tokens kept per text."),
    click.option("--truncation", type=click.Choice(["pre", "post"]), default=T.truncation, show_default=True,
                 help="Which side loses tokens beyond --max-len: pre keeps the ending, post the beginning."),
    click.option("--tokenizer-mode", type=click.Choice(MODES), default=T.mode, show_default=True,
                 help="word: regex words; sentencepiece: a unigram subword model trained on the training rows "
                      "(for Korean and other agglutinative languages; --vocab-size sets its size)."),
    click.option("--punctuation", type=click.Choice(["strip", "keep"]), default=T.punctuation, show_default=True,
                 help="Drop punctuation, or keep each mark as a token."),
    click.option("--join-clitics", is_flag=True,
                 help="Tokenizer maps treebank-tokenized text to raw text (\"does n't\" -> \"doesn't\", "
                      "\"-lrb-\" -> \"(\"), so SST-2-style data and raw text give the same tokens; "
                      "recorded in the bundle's tokenizer."),
    click.option("--split-negation", is_flag=True,
                 help="Tokenizer splits the negation \"n't\" off its word the treebank way "
                      "(\"doesn't\" -> \"does n't\", \"can't\" -> \"ca n't\"), so negation is one shared token, "
                      "not one word per negated verb; raw and treebank text agree with or without --join-clitics; "
                      "recorded in the bundle's tokenizer (compiles into the text graph with --punctuation strip)."),
    click.option("--negation-as-not", is_flag=True,
                 help="With --split-negation: the split-off \"n't\" is looked up as \"not\" (one id, one embedding "
                      "for both spellings of the negation: \"didn't hate\" reads as \"did not hate\"); the tokens "
                      "stay as written; recorded in the bundle's tokenizer."),
    click.option("--lowercase-mapping", type=click.Choice(LOWERCASE_MAPPINGS), default="simple", show_default=True,
                 help="simple: one code point to one, as ONNX Runtime lowercases, so the bundle gets a text graph "
                      "(model_text.onnx); full: Python's str.lower() (\"İ\" -> two code points, final \"ς\"; "
                      "no text graph)."),
    click.option("--vocab-size", type=click.IntRange(3), default=C.vocab_size, show_default=True,
                 help="Vocabulary size, padding and OOV included."),
    click.option("--embedding-dim", type=click.IntRange(1), default=C.embedding_dim, show_default=True,
                 help="Embedding width."),
    click.option("--lstm-units", type=click.IntRange(1), default=C.lstm_units, show_default=True,
                 help="Units per LSTM direction."),
    click.option("--lstm-layers", type=click.IntRange(1), default=C.lstm_layers, show_default=True,
                 help="Stacked bidirectional LSTM layers."),
    click.option("--attention-units", type=click.IntRange(1), default=C.attention_units, show_default=True,
                 help="Hidden units of concat attention."),
    click.option("--dense-units", type=click.IntRange(1), default=C.dense_units, show_default=True,
                 help="Units of the relu layer."),
    click.option("--dropout", type=click.FloatRange(0, 1, max_open=True), default=C.dropout, show_default=True,
                 help="Dropout after the relu layer."),
    click.option("--embedding-dropout", type=click.FloatRange(0, 1, max_open=True), default=C.embedding_dropout,
                 show_default=True, help="Spatial dropout on the embeddings (drops whole embedding channels)."),
    click.option("--validation-split", type=click.FloatRange(0, 1, min_open=True, max_open=True), default=0.1,
                 show_default=True, help="Fraction of the (shuffled) training rows held out for validation."),
    click.option("--limit", type=click.IntRange(2), default=None,
                 help="Use only this many rows of the shuffled training data."),
    click.option("--seed", type=int, default=C.seed, show_default=True,
                 help="Seed for the shuffle, initialisation and dropout."),
    click.option("--split-seed", type=int, default=None,
                 help="Seed of the train/validation split only (default: --seed)."),
]

_ENSEMBLE_OPTIONS = [  # after --tokenizer, in train's --help order
    click.option("--members", type=click.IntRange(1), default=C.members, show_default=True,
                 help="Train this many networks (seeds --seed, --seed+1, …) on one tokenizer and ship their average "
                      "as one graph (an ensemble: N× the inference cost)."),
    click.option("--refit", is_flag=True,
                 help="After choosing the best epoch count on validation, train again from scratch on all rows "
                      "(train + validation) for that many epochs and export that model."),
]


def _options(*declarations):
    """Apply click option declarations (lists, or single decorators) in the order written, so both
    commands share one declaration of each option (and --help lists them in that order)."""
    flat = [d for item in declarations for d in (item if isinstance(item, list) else [item])]

    def apply(function):
        for option in reversed(flat):
            function = option(function)
        return function

    return apply


_TOKENIZER = click.option("--tokenizer", "tokenizer_path", type=click.Path(dir_okay=False), default=None,
                          help="Use this tokenizer JSON (e.g. another bundle's training/tokenizer.json) "
                               "instead of fitting one, so the new model shares its ids (needed to combine models).")


_INIT_FROM = click.option(
    "--init-from", type=click.Path(exists=True, file_okay=False), default=None,
    help="Fine-tune the network in this folder's training/ (a bundle's or another run's --out: model.keras and "
         "tokenizer.json) instead of training a fresh one: its architecture and tokenizer are kept (so architecture "
         "and tokenizer options are refused), this command's data, --epochs, --learning-rate, --batch-size, "
         "--patience and --seed are used; Adam starts afresh (model.keras keeps no optimizer state).")
# what --init-from takes from the saved run, so may not be given with it
_SAVED_NETWORK = ("attention", "max_len", "truncation", "tokenizer_mode", "punctuation", "join_clitics",
                  "split_negation", "negation_as_not", "lowercase_mapping", "vocab_size", "embedding_dim",
                  "lstm_units", "lstm_layers", "attention_units", "dense_units", "dropout", "embedding_dropout",
                  "tokenizer_path", "members", "refit")


@main.command()
@_options(_CLASSIFIER_OPTIONS, _TOKENIZER, _ENSEMBLE_OPTIONS, _INIT_FROM, _OPSET, _QUANTIZE, _FORCE, _OUT)
@click.pass_context
def train(ctx: click.Context, **options) -> None:
    """Train a classifier on labelled text and write an ONNX bundle to --out.

    The folder gets model.onnx and manifest.json (the bundle) and training/ with the Keras model,
    tokenizer and history, which `attn-export convert` can re-export."""
    from trainer.converter import prepare_out_dir
    from trainer.recipe import train_and_evaluate

    started = time.perf_counter()
    _check_pairs(options)
    init_model, given, saved = _init_from(ctx, options)
    out = prepare_out_dir(options["out"], options["force"])
    data = _classifier_data(options)
    if not options["init_from"]:
        given = Tokenizer.load(options["tokenizer_path"]) if options["tokenizer_path"] else None
        _take_max_len(given, options, "--tokenizer")
    config, spec = _config_and_spec(options)
    result, metrics = train_and_evaluate(data, config, spec, patience=options["patience"], refit=options["refit"],
                                         tokenizer=given, test_name=options["test_data"],
                                         verbose=1 if sys.stderr.isatty() else 2,
                                         log=lambda line: click.echo(line, err=True), init_model=init_model)
    provenance = data.provenance | {"command": "attn-export " + " ".join(sys.argv[1:])} | _init_record(options, saved)
    _save_export_report(result, data, metrics, provenance, options, out, started)


def _init_from(ctx: click.Context, options: dict) -> tuple[object, Tokenizer | None, dict]:
    """--init-from (train, distill): (saved network, its tokenizer, its summary), or (None, None, {}).
    The options the saved network fixes are refused when given, and set in `options` from it."""
    if not options["init_from"]:
        return None, None, {}
    fixed = [f"--{name.replace('_path', '').replace('_', '-')}" for name in _SAVED_NETWORK
             if ctx.get_parameter_source(name) is click.core.ParameterSource.COMMANDLINE]
    if options.get("fit_tokenizer"):
        fixed.append("--fit-tokenizer")
    if fixed:
        raise InputError(f"--init-from {options['init_from']} keeps its saved network and tokenizer: "
                         f"drop {', '.join(fixed)}")
    from trainer.fit import load_classifier_training

    init_model, recovered, given, saved = load_classifier_training(options["init_from"])
    if recovered.members > 1:
        raise InputError(f"--init-from {options['init_from']}: an ensemble of {recovered.members} networks; "
                         "fine-tune one network")
    options.update({k: v for k, v in recovered.to_dict().items()
                    if k not in ("learning_rate", "batch_size", "epochs", "seed", "pair_loss_weight")},
                   max_len=given.spec.max_len)
    return init_model, given, saved


def _init_record(options: dict, saved: dict) -> dict:
    """The manifest's data.init_from: which run the network continued (empty without --init-from)."""
    if not options["init_from"]:
        return {}
    return {"init_from": {"folder": str(options["init_from"]), "best_epoch": saved.get("best_epoch"),
                          "validation_accuracy": saved.get("validation_accuracy"),
                          "command": saved.get("data", {}).get("command")}}


def _save_export_report(result, data, metrics: dict, provenance: dict, options: dict, out, started: float,
                        prefix: str = "") -> dict:
    """The end of `train` and `distill`: training/ outputs, the gated bundle, one summary line (after
    `prefix`), the chance warning. Returns the manifest."""
    from trainer.fit import save_training_outputs

    save_training_outputs(result, out, {"metrics": metrics, "data": provenance})
    manifest = _export(result.model, result.config, result.tokenizer, out, options["opset"], metrics, provenance,
                       options["quantize"], (data.validation.texts, data.validation.labels), options["force"])
    test_note = f", test accuracy {metrics['test_accuracy']:.4f}" if data.test is not None else ""
    click.echo(
        f"{prefix}validation accuracy {metrics['validation_accuracy']:.4f} (epoch {metrics['best_epoch']})"
        f"{' then refit on all rows' if options['refit'] else ''}{test_note}, "
        f"elapsed {time.perf_counter() - started:.0f} s, bundle {out}", err=True
    )
    warning = chance_warning(metrics["validation_accuracy"], data.validation.labels)
    if warning:
        click.echo(warning, err=True)
    return manifest


def _classifier_data(options: dict):
    """The training/validation/test rows from the shared data and split options (train, distill)."""
    from trainer.recipe import load_classifier_data

    return load_classifier_data(
        options["train_data"], validation_split=options["validation_split"], limit=options["limit"],
        split_seed=options["seed"] if options["split_seed"] is None else options["split_seed"],
        **{k: options[k] for k in ("text_column", "label_column", "label_map", "quoting", "test_data",
                                   "extra_train_data", "extra_validation_data", "extra_text_column",
                                   "extra_label_column", "extra_train_repeat", "detreebank_extra",
                                   "extra_pair_column")})


def _take_max_len(tokenizer: Tokenizer | None, options: dict, what: str) -> None:
    """A given tokenizer fixes the max length: say so when --max-len differs, and use its."""
    if tokenizer is not None and tokenizer.spec.max_len != options["max_len"]:
        click.echo(f"{what}: using its max length {tokenizer.spec.max_len} "
                   f"(not --max-len {options['max_len']})", err=True)
        options["max_len"] = tokenizer.spec.max_len


def _check_pairs(options: dict) -> None:
    """Refuse, before anything is read or written, a pair loss without pairs."""
    if options["pair_loss_weight"] > 0 and not options["extra_pair_column"]:
        raise InputError("--pair-loss-weight needs --extra-pair-column: the pairs are the rows sharing its value")


def _config_and_spec(options: dict) -> tuple[ClassifierConfig, TokenizerSpec]:
    config = ClassifierConfig(**{f.name: options[f.name] for f in fields(ClassifierConfig)})
    spec = TokenizerSpec(max_len=options["max_len"], mode=options["tokenizer_mode"], truncation=options["truncation"],
                         punctuation=options["punctuation"], join_clitics=options["join_clitics"],
                         split_negation=options["split_negation"], negation_as_not=options["negation_as_not"],
                         lowercase_mapping=options["lowercase_mapping"])
    return config, spec


_FITTING = ("tokenizer_mode", "vocab_size", "truncation", "punctuation", "join_clitics", "split_negation",
            "negation_as_not", "lowercase_mapping")  # what only a fitted tokenizer uses


@main.command()
@click.option("--teacher", required=True, multiple=True,
              help="The teacher: a sentiment bundle, a shipped short name (nsmc, imdb, ...) or a folder (./runs/x), an "
                   "ensemble included. Scored through the runtime (onnxruntime), not Keras. Repeat it to average "
                   "several bundles (the mean over all their networks; the student reads the first one's tokenizer).")
@click.option("--alpha", type=click.FloatRange(0, 1), default=DEFAULT_ALPHA, show_default=True,
              help="Weight of the teacher in each training target: alpha x teacher probability + (1 - alpha) "
                   "x true label (0 = labels alone, 1 = teacher alone). Validation always selects on the true labels.")
@click.option("--temperature", type=click.FloatRange(0, min_open=True), default=DEFAULT_TEMPERATURE, show_default=True,
              help="Softens the teacher: its probability p becomes sigmoid(logit(p) / T) before mixing. "
                   "T > 1 pulls its confident answers towards 0.5 (keeping their order), "
                   "so the student also learns how sure the teacher is; T = 1 uses p as it is.")
@click.option("--augment", type=click.IntRange(0), default=0, show_default=True,
              help="Perturbed copies of every training text for the teacher to label and the student to learn "
                   "from (words dropped at random; more input text for distillation). The validation rows that "
                   "select stay as they are. Each copy costs one more pass of the teacher and makes an epoch longer.")
@click.option("--augment-drop", type=click.FloatRange(0, 1, min_open=True, max_open=True), default=DEFAULT_AUGMENT_DROP,
              show_default=True, help="With --augment: the probability that a copy drops each word (characters for "
                                      "texts under 3 words).")
@_options(_CLASSIFIER_OPTIONS)
@click.option("--tokenizer", "tokenizer_path", type=click.Path(dir_okay=False), default=None,
              help="Student tokenizer JSON. Default: the teacher's own tokenizer (same tokens and ids; --max-len, "
                   "--vocab-size and the other tokenizer options then come from it).")
@click.option("--fit-tokenizer", is_flag=True,
              help="Fit a new tokenizer on the training rows with --tokenizer-mode, --vocab-size, --max-len, "
                   "--punctuation, --truncation, --join-clitics instead of using the teacher's.")
@_options(_ENSEMBLE_OPTIONS, _INIT_FROM, _OPSET, _QUANTIZE, _FORCE, _OUT)
@click.pass_context
def distill(ctx: click.Context, **options) -> None:
    """Train a student classifier on a teacher bundle's probabilities mixed with the true labels
    (knowledge distillation), select its epoch on validation accuracy, and write an ONNX bundle.

    The split, architecture and training options are those of `train` (same defaults); the
    manifest records the teacher (name, sha256 of its model.onnx), alpha, temperature and the
    command, and a MODEL_CARD.md stub is written beside it. --init-from continues a saved student
    (its network and tokenizer) on this command's targets, e.g. for more epochs."""
    from trainer.converter import prepare_out_dir
    from trainer.distill import distill as run_distill
    from trainer.distill import load_teachers, write_model_card

    started = time.perf_counter()
    _check_pairs(options)
    source = ctx.get_parameter_source
    given_fitting = [f"--{k.replace('_', '-')}" for k in _FITTING
                     if source(k) == click.core.ParameterSource.COMMANDLINE]
    if given_fitting and not options["fit_tokenizer"]:
        raise click.UsageError(f"{', '.join(given_fitting)} only apply to a fitted tokenizer: add --fit-tokenizer "
                               f"(the default student tokenizer is the teacher's)")
    if options["fit_tokenizer"] and options["tokenizer_path"]:
        raise click.UsageError("--fit-tokenizer and --tokenizer exclude each other")
    init_model, given, saved = _init_from(ctx, options)
    teacher, teacher_record = load_teachers(options["teacher"])
    if init_model is None:
        given = None if options["fit_tokenizer"] else (
            Tokenizer.load(options["tokenizer_path"]) if options["tokenizer_path"] else teacher.tokenizer)
        _take_max_len(given, options, "--tokenizer" if options["tokenizer_path"] else "the teacher's tokenizer")
    out = prepare_out_dir(options["out"], options["force"])
    data = _classifier_data(options)
    config, spec = _config_and_spec(options)
    result, metrics, record = run_distill(
        data, teacher, config, alpha=options["alpha"], temperature=options["temperature"], spec=spec, tokenizer=given,
        patience=options["patience"], refit=options["refit"], test_name=options["test_data"],
        augment=options["augment"], augment_drop=options["augment_drop"], verbose=1 if sys.stderr.isatty() else 2,
        log=lambda line: click.echo(line, err=True), init_model=init_model)
    if options["tokenizer_path"]:
        record["tokenizer"] = f"given: {options['tokenizer_path']}"
    elif init_model is not None:
        record["tokenizer"] = f"the --init-from network's: {options['init_from']}"
    provenance = data.provenance | {"teacher": teacher_record, "distillation": record,
                                    "command": "attn-export " + " ".join(sys.argv[1:])} | _init_record(options, saved)
    teacher_note = f"teacher validation accuracy {metrics['distillation']['teacher_validation_accuracy']:.4f}, student "
    manifest = _save_export_report(result, data, metrics, provenance, options, out, started, prefix=teacher_note)
    write_model_card(out, manifest)


@main.command()
@click.argument("keras_model", type=click.Path())
@click.option("--tokenizer", "tokenizer_path", required=True, type=click.Path(),
              help="Tokenizer JSON saved with the model.")
@_OPSET
@_QUANTIZE
@click.option("--validation-data", type=click.Path(), default=None,
              help="Labelled file (text, label columns) for the int8 gate. Default: the validation split recorded "
                   "in training/history.json, carved again from its training file.")
@_FORCE
@_OUT
def convert(keras_model: str, tokenizer_path: str, opset: int, quantize: str | None, validation_data: str | None,
            force: bool, out: str) -> None:
    """Export an existing trained Keras classifier (.keras) as an ONNX bundle."""
    import json

    import keras

    import trainer.attention  # noqa: F401  (registers the attention layers for loading)
    from trainer.converter import prepare_out_dir
    from trainer.errors import ExportError
    from trainer.models.classifier import config_from_model

    tokenizer = Tokenizer.load(tokenizer_path)
    if not Path(keras_model).is_file():
        raise ExportError(f"{keras_model}: no such model file")
    try:
        model = keras.saving.load_model(keras_model)
    except Exception as error:  # Keras raises many types for a corrupt archive
        raise ExportError(f"{keras_model}: cannot load the Keras model ({type(error).__name__}: "
                          f"{str(error)[:200]})") from None
    try:
        config = config_from_model(model)
    except ValueError as error:
        raise ExportError(f"{keras_model}: {error}") from None
    history = Path(keras_model).with_name("history.json")
    recorded = json.loads(history.read_text()) if history.is_file() else {}
    config = _recorded_config(config, recorded.get("config"), tokenizer)
    gate_data = _gate_data(validation_data, recorded.get("data", {})) if quantize else None
    target = prepare_out_dir(out, force)
    metrics = {k: v for k, v in recorded.get("metrics", {}).items() if k != "int8_gate"}
    _export(model, config, tokenizer, target, opset, metrics, recorded.get("data", {"keras_model": str(keras_model)}),
            quantize, gate_data, force)
    click.echo(f"bundle {out}", err=True)


# ClassifierConfig fields a .keras file cannot tell
_NOT_IN_THE_MODEL = ("max_len", "learning_rate", "batch_size", "epochs", "seed")


def _recorded_config(recovered: ClassifierConfig, recorded: dict | None, tokenizer: Tokenizer) -> ClassifierConfig:
    """The config a re-exported bundle records: the architecture read from the Keras model, with the
    training settings (epochs, batch, learning rate, seed) of training/history.json when that file
    describes this same network, and the tokenizer's max length (the model itself does not carry it)."""
    if recorded:
        trained = ClassifierConfig.from_dict(recorded)
        if replace(trained, **{name: getattr(recovered, name) for name in _NOT_IN_THE_MODEL}) == recovered:
            recovered = trained
    return replace(recovered, max_len=tokenizer.spec.max_len)


@main.command()
@click.argument("bundles", nargs=-1, required=True, type=click.Path(file_okay=False))
@_OPSET
@_FORCE
@_OUT
def combine(bundles: tuple[str, ...], opset: int, force: bool, out: str) -> None:
    """Combine trained classifier bundles (single models or ensembles, each with its training/
    folder) into one ensemble bundle whose outputs are the mean of all their networks. They must
    share one tokenizer (train the later ones with `--tokenizer`) and one architecture."""
    from trainer.converter import prepare_out_dir
    from trainer.fit import combine_trained

    ensemble, config, tokenizer, sources = combine_trained(bundles)
    target = prepare_out_dir(out, force)
    data = {"combined_from": [s["bundle"] for s in sources], "command": "attn-export " + " ".join(sys.argv[1:])}
    _export(ensemble, config, tokenizer, target, opset, {"combined_from": sources}, data, force=force)
    click.echo(f"{config.members} networks from {len(bundles)} bundles, bundle {out}", err=True)


@main.command("train-translator")
@click.option("--pairs", required=True, type=click.Path(),
              help="Sentence-pair table, e.g. ../shared/datasets/tatoeba/spa-eng.tsv.gz.")
@click.option("--source-column", default="spa", show_default=True, help="Column of the source language.")
@click.option("--target-column", default="eng", show_default=True, help="Column of the target language.")
@click.option("--style", type=click.Choice(STYLES), default=S.style, show_default=True,
              help="Attention: luong (query sₜ), bahdanau (query sₜ₋₁, context fed to the decoder), none (baseline).")
@click.option("--score", type=click.Choice(SCORES), default=S.score, show_default=True,
              help="Luong score function (bahdanau always uses concat).")
@click.option("--epochs", type=click.IntRange(1), default=S.epochs, show_default=True,
              help="Training epochs (best validation loss kept).")
@click.option("--patience", type=click.IntRange(1), default=2, show_default=True,
              help="Early stopping patience (epochs).")
@click.option("--batch-size", type=click.IntRange(1), default=S.batch_size, show_default=True, help="Pairs per batch.")
@click.option("--learning-rate", type=click.FloatRange(0, min_open=True), default=S.learning_rate, show_default=True,
              help="Adam learning rate.")
@click.option("--embedding-dim", type=click.IntRange(1), default=S.embedding_dim, show_default=True,
              help="Embedding width (both sides).")
@click.option("--units", type=click.IntRange(1), default=S.units, show_default=True,
              help="Encoder units per direction (decoder: twice).")
@click.option("--dropout", type=click.FloatRange(0, 1, max_open=True), default=S.dropout, show_default=True,
              help="Dropout on source embeddings, encoder states and decoder outputs while training.")
@click.option("--tokenizer", "tokenizer_mode", type=click.Choice(TOKENIZER_MODES),
              default=S.tokenizer, show_default=True,
              help="Both sides: sentencepiece subwords (the target can never produce <oov>) or words.")
@click.option("--lowercase/--cased", default=S.lowercase, show_default=True,
              help="Lower-case both sides (cased keeps names' capitals).")
@click.option("--source-vocab", type=click.IntRange(5), default=S.source_vocab, show_default=True,
              help="Source vocabulary size (sentencepiece: at most).")
@click.option("--target-vocab", type=click.IntRange(5), default=S.target_vocab, show_default=True,
              help="Target vocabulary size (sentencepiece: at most).")
@click.option("--time-budget", type=click.FloatRange(0, min_open=True), default=None,
              help="Stop training after the epoch that would let the next one end past this many seconds.")
@click.option("--max-len", type=click.IntRange(2), default=S.max_source_len, show_default=True,
              help="Most tokens per source and target sentence.")
@click.option("--validation-fraction", type=click.FloatRange(0, 1, min_open=True, max_open=True),
              default=0.05, show_default=True)
@click.option("--test-fraction", type=click.FloatRange(0, 1, min_open=True, max_open=True),
              default=0.05, show_default=True)
@click.option("--limit", type=click.IntRange(2), default=None,
              help="Train on this many (shuffled) training pairs only.")
@click.option("--seed", type=int, default=S.seed, show_default=True,
              help="Seed for the split, initialisation and shuffling.")
@click.option("--beam-size", type=click.IntRange(1), default=4, show_default=True, help="Beam for the test-split BLEU.")
@click.option("--init-from", type=click.Path(file_okay=False), default=None,
              help="Continue the model in this folder's training/ (weights, tokenizers, Adam state; "
                   "another run's --out): its network, tokenizers and split seed are kept, "
                   "--epochs more epochs are trained with this command's --learning-rate, --batch-size, "
                   "--patience and --time-budget; the same --pairs only.")
@click.option("--test-score/--no-test-score", default=True, show_default=True,
              help="Score the held-out test split after training. --no-test-score for a run you will continue with "
                   "--init-from, so that only the run you ship ever looks at the test split.")
@_OPSET
@_FORCE
@_OUT
def train_translator_command(**options) -> None:
    """Train a seq2seq translator, export encoder.onnx + decoder_step.onnx, and report BLEU/chrF
    on the held-out test split (carved by sentence group; never used to select)."""
    from trainer.converter import prepare_out_dir
    from trainer.export_seq2seq import export_translator_bundle
    from trainer.fit_seq2seq import save_translator_training
    from trainer.recipe_seq2seq import evaluate_test_split, load_translator_data, train_and_measure

    started = time.perf_counter()
    init_from = options["init_from"]
    if init_from:
        from trainer.recipe_seq2seq import continued_config

        config, saved = continued_config(init_from, options["pairs"], epochs=options["epochs"],
                                         learning_rate=options["learning_rate"], batch_size=options["batch_size"])
    else:
        config = Seq2SeqConfig(
            source_vocab=options["source_vocab"], target_vocab=options["target_vocab"],
            max_source_len=options["max_len"], max_target_len=options["max_len"],
            embedding_dim=options["embedding_dim"], units=options["units"],
            dropout=options["dropout"], tokenizer=options["tokenizer_mode"], lowercase=options["lowercase"],
            style=options["style"], score=options["score"], learning_rate=options["learning_rate"],
            batch_size=options["batch_size"], epochs=options["epochs"], seed=options["seed"],
        )
    out = prepare_out_dir(options["out"], options["force"])
    data = load_translator_data(options["pairs"], source_column=options["source_column"],
                                target_column=options["target_column"],
                                validation_fraction=options["validation_fraction"],
                                test_fraction=options["test_fraction"], seed=config.seed, limit=options["limit"])
    log = lambda line: click.echo(line, err=True)  # noqa: E731
    result, metrics = train_and_measure(data, config, patience=options["patience"],
                                        time_budget_s=options["time_budget"],
                                        verbose=1 if sys.stderr.isatty() else 2, log=log, init_from=init_from)
    provenance = data.provenance | {"command": "attn-export " + " ".join(sys.argv[1:])}
    if init_from:
        provenance["init_from"] = {"folder": str(init_from), "best_epoch": saved.get("best_epoch"),
                                   "validation_loss": saved.get("validation_loss")}
    save_translator_training(result, out, {"metrics": metrics, "data": provenance})
    export_translator_bundle(result, out, opset=options["opset"], metrics=metrics, data=provenance,
                             parity_sentences=data.validation.sources[:50], force=options["force"], log=log)
    if not options["test_score"]:
        click.echo(f"validation loss {result.validation_loss:.4f} (epoch {result.best_epoch}), test split not scored, "
                   f"elapsed {time.perf_counter() - started:.0f} s, bundle {out}", err=True)
        return
    report = evaluate_test_split(out, data.test, beam_size=options["beam_size"])
    click.echo(f"validation loss {result.validation_loss:.4f} (epoch {result.best_epoch}), "
               f"test BLEU {report['bleu']:.2f}, chrF {report['chrf']:.2f} (beam {options['beam_size']}, "
               f"{len(data.test)} pairs), elapsed {time.perf_counter() - started:.0f} s, bundle {out}", err=True)


@main.command("evaluate-translator")
@click.argument("bundle", type=click.Path(exists=True, file_okay=False))
@click.option("--pairs", type=click.Path(exists=True, dir_okay=False), default=None,
              help="The pairs file it was trained on, if not where its manifest says (checked by sha256).")
@click.option("--beam-size", type=click.IntRange(1), default=4, show_default=True, help="Beam for the test-split BLEU.")
def evaluate_translator_command(bundle: str, pairs: str | None, beam_size: int) -> None:
    """Score a translator bundle made with --no-test-score on its held-out test split, once, and record the
    figures in its manifest (what train-translator does when it ends). The split is carved again from the
    recorded pairs file, seed and fractions; a bundle already scored is refused."""
    from trainer.recipe_seq2seq import evaluate_test_split, recorded_test_split

    started = time.perf_counter()
    test = recorded_test_split(bundle, pairs)
    report = evaluate_test_split(bundle, test, beam_size=beam_size)
    lengths = ", ".join(f"{name} {b['bleu']:.2f} ({b['sentences']})"
                        for name, b in report["bleu_by_source_length"].items())
    click.echo(f"{bundle}: test BLEU {report['bleu']:.2f}, chrF {report['chrf']:.2f} cased (beam {beam_size}, "
               f"{len(test)} pairs; by source pieces: {lengths}), elapsed {time.perf_counter() - started:.0f} s",
               err=True)


@main.command("text-graph", cls=click.Command)  # reads and writes bundles: no TensorFlow
@click.argument("bundle", type=click.Path(file_okay=False))
@click.option("--lowercase-mapping", type=click.Choice(["simple"]), default=None,
              help="First declare the bundle's lowercasing 'simple' (one code point to one, as ONNX Runtime does): "
                   "changes tokens only of texts holding 'İ' or a word-final 'Σ'; said in one line.")
def text_graph_command(bundle: str, lowercase_mapping: str | None) -> None:
    """Add model_text.onnx to a word-mode classifier BUNDLE: raw strings in, probability, attention,
    tokens and lengths out, the tokenizer compiled from ONNX Runtime's built-in ops; gated on parity
    with model.onnx fed by the Python tokenizer, declared in the manifest with its sha256."""
    from trainer.text_graph import add_text_graph

    try:
        add_text_graph(bundle, lowercase_mapping=lowercase_mapping, log=lambda line: click.echo(line, err=True))
    except (AttnError, OSError) as error:
        raise click.ClickException(str(error)) from None


@main.command("counterfactual-edits", cls=click.Command)  # reads a table, writes a table: no TensorFlow
@click.argument("pairs", type=click.Path(dir_okay=False))
@click.option("--out", required=True, type=click.Path(dir_okay=False),
              help="TSV to write (.gz ok): Sentiment, Text, batch_id; never overwritten.")
def counterfactual_edits_command(pairs: str, out: str) -> None:
    """Write the sentences that differ between the halves of each counterfactual pair in PAIRS (CAD's
    Sentiment / Text / batch_id TSV), each with its half's label: sentence-level rows on exactly the
    edits that flip the label, for --extra-train-data."""
    from trainer.counterfactual import write_edits

    try:
        counts = write_edits(pairs, out)
    except (AttnError, OSError) as error:
        raise click.ClickException(str(error)) from None
    labels = ", ".join(f"{n:,} {name}" for name, n in counts["labels"].items())
    click.echo(f"{out}: {counts['rows']:,} changed sentences from {counts['pairs']:,} pairs ({labels})", err=True)


@main.command("balance-cue", cls=click.Command)  # reads a table, writes a table: no TensorFlow
@click.argument("data", type=click.Path(dir_okay=False))
@click.option("--text-column", default="text", show_default=True)
@click.option("--label-column", default="label", show_default=True)
@click.option("--cue", default=None,
              help="Regular expression (case-insensitive) a row's text must match (default: a negation word or "
                   "\"n't\").")
@click.option("--seed", type=int, default=0, show_default=True, help="Seed of the sample that tops up whole copies.")
@click.option("--out", required=True, type=click.Path(dir_okay=False),
              help="TSV to write (.gz ok): the label and text columns as read; never overwritten.")
def balance_cue_command(data: str, text_column: str, label_column: str, cue: str | None, seed: int, out: str) -> None:
    """Write DATA's rows that hold a cue (a negation, by default) and the rarer label among those rows, copied
    until both labels are equally many among them: for --extra-train-data, so that the cue alone no longer
    tells the label ("not" is no longer a negative word) and what it negates has to."""
    from trainer.balance import NEGATION, balance_cue

    try:
        counts = balance_cue(data, out, text_column=text_column, label_column=label_column, cue=cue or NEGATION,
                             seed=seed)
    except (AttnError, OSError) as error:
        raise click.ClickException(str(error)) from None
    matched = " / ".join(f"{n:,} {label}" for label, n in counts["matched"].items())
    click.echo(f"{out}: {counts['written']:,} rows labelled {counts['label']} (of {counts['rows']:,} rows, {matched} "
               "match the cue)", err=True)


@main.command("cue-rows", cls=click.Command)  # reads tables, writes a table: no TensorFlow
@click.argument("data", type=click.Path(dir_okay=False))
@click.option("--text-column", default="text", show_default=True)
@click.option("--label-column", default="label", show_default=True)
@click.option("--cue", default=None, help="Regular expression (case-insensitive) a row's text must match.")
@click.option("--negated-lexicon", type=click.Path(dir_okay=False), default=None,
              help="Instead of --cue: a negation word or \"n't\" directly before a word this labelled file's one-word "
                   "rows give --lexicon-label (SST-2's training phrases: \"bad\", \"dull\", \"hate\", ...).")
@click.option("--lexicon-text-column", default="sentence", show_default=True)
@click.option("--lexicon-label-column", default="label", show_default=True)
@click.option("--lexicon-label", default="0", show_default=True, help="The lexicon's label of its words.")
@click.option("--out", required=True, type=click.Path(dir_okay=False),
              help="TSV to write (.gz ok): the label and text columns as read; never overwritten.")
def cue_rows_command(data: str, text_column: str, label_column: str, cue: str | None, negated_lexicon: str | None,
                     lexicon_text_column: str, lexicon_label_column: str, lexicon_label: str, out: str) -> None:
    """Write DATA's rows whose text matches a cue, once each with its own label (both labels kept), for
    --extra-train-data with --extra-train-repeat: weighs a phenomenon up (negated negatives: "did n't hate
    this one", "never dull") without changing what the data says about it."""
    from trainer.balance import cue_rows, lexicon_words, negated_cue

    if (cue is None) == (negated_lexicon is None):
        raise click.ClickException("give exactly one of --cue and --negated-lexicon")
    try:
        if negated_lexicon is not None:
            words = lexicon_words(negated_lexicon, text_column=lexicon_text_column,
                                  label_column=lexicon_label_column, label=lexicon_label)
            cue = negated_cue(words)
            click.echo(f"{negated_lexicon}: {len(words):,} one-word rows labelled {lexicon_label}", err=True)
        counts = cue_rows(data, out, text_column=text_column, label_column=label_column, cue=cue)
    except (AttnError, OSError) as error:
        raise click.ClickException(str(error)) from None
    labels = ", ".join(f"{n:,} labelled {label}" for label, n in counts["labels"].items())
    click.echo(f"{out}: {counts['written']:,} of {counts['rows']:,} rows match the cue ({labels})", err=True)


@main.command("ort", cls=click.Command)  # reads and writes bundles: no TensorFlow
@click.argument("bundle", type=click.Path(file_okay=False))
def ort_command(bundle: str) -> None:
    """Write BUNDLE/model_text.ort (ONNX Runtime's mobile/minimal-build format) and
    BUNDLE/required_operators.config (the ops a reduced build needs) from its text graph; gated on
    parity with model_text.onnx and recorded in the manifest with its sha256."""
    from trainer.text_graph import write_ort_format

    try:
        write_ort_format(bundle, log=lambda line: click.echo(line, err=True))
    except (AttnError, OSError) as error:
        raise click.ClickException(str(error)) from None


@main.command("compare-translators", cls=click.Command)  # reads bundles: no TensorFlow
@click.argument("bundles", nargs=-1, required=True, type=click.Path(file_okay=False))
@click.option("--name", "names", multiple=True,
              help="Label per bundle, in order (default: the bundle's attention style).")
@click.option("--plot", type=click.Path(dir_okay=False), default=None,
              help="Write BLEU by source length as a PNG (needs matplotlib).")
def compare_translators(bundles: tuple[str, ...], names: tuple[str, ...], plot: str | None) -> None:
    """Print a markdown table of the test-split BLEU / chrF (overall and by source length) that
    train-translator recorded in each bundle, e.g. attention vs the no-attention baseline; refuses
    bundles evaluated on different test splits."""
    from runtime.bundle import Bundle
    from trainer.evaluate_seq2seq import comparison_table, plot_bleu_by_length, test_reports

    if names and len(names) != len(bundles):
        raise click.UsageError(f"{len(names)} --name value(s) for {len(bundles)} bundle(s)")
    manifests = [Bundle.load(b).manifest for b in bundles]
    labels = list(names) or [m.get("attention", Path(b).name) for m, b in zip(manifests, bundles)]
    if len(set(labels)) != len(labels):
        raise click.UsageError(f"two bundles share the label {labels}; give each a --name")
    reports = test_reports(dict(zip(labels, manifests)))
    click.echo(comparison_table(reports), nl=False)
    if plot:
        try:
            plot_bleu_by_length(reports, plot)
        except ImportError:
            raise click.ClickException("--plot needs matplotlib: pip install 'attn-onnx[plot]'") from None
        click.echo(f"plot {plot}", err=True)


@main.command(cls=click.Command)  # reads and rewrites a bundle's manifest: no TensorFlow
@click.argument("bundle")
@click.option("--data", "data_path", type=click.Path(), default=None,
              help="Labelled validation rows (CSV/TSV/JSONL). Default: the rows the bundle's training validated on "
                   "(its recorded split of the training file, plus its extra validation file).")
@click.option("--text-column", default="text", show_default=True, help="Text column of --data.")
@click.option("--label-column", default="label", show_default=True, help="Label column of --data.")
@click.option("--validation-split", type=click.FloatRange(0, 1, min_open=True, max_open=True), default=None,
              help="Use only the validation part of --data's seeded shuffle split (as training carved it).")
@click.option("--split-seed", type=int, default=0, show_default=True, help="Seed of that split.")
@click.option("--languages", default=None, help="Languages of the model's data, e.g. 'en' or 'ko' (ISO 639-1, comma-"
              "separated). Default: the manifest's, else the shipped catalog's.")
@click.option("--test-data", type=click.Path(), default=None,
              help="Held-out rows to report ECE/Brier before and after on (never used to fit), and to plot.")
@click.option("--test-text-column", default="text", show_default=True, help="Text column of --test-data.")
@click.option("--plot", "plot_path", type=click.Path(dir_okay=False), default=None,
              help="Reliability diagram PNG of the test rows (default with --test-data: BUNDLE/calibration.png).")
@click.option("--temperature-on-own-split", is_flag=True, help="Fit the temperature on the training file's own split "
              "alone, without the extra validation files (e.g. IMDB reviews without SST-2 dev phrases, "
              "to calibrate for reviews); the OOV threshold still comes from all the validation rows.")
@click.option("--record-only", is_flag=True, help="Record the fitted temperature and its figures but keep "
              "temperature 1 (validation rows that are not held out, e.g. seen by a teacher refit on them).")
def calibrate(bundle, data_path, text_column, label_column, validation_split, split_seed, languages, test_data,
              test_text_column, plot_path, temperature_on_own_split, record_only) -> None:
    """Fit temperature scaling and the OOV threshold of a sentiment BUNDLE on validation rows, and write
    them (with the declared languages) into its manifest. Rerunning refits from the graph's own outputs."""
    import runtime
    from runtime.catalog import SHIPPED_LANGUAGES
    from trainer.calibrate import calibrate_bundle, plot_reliability, validation_rows, write_calibration
    from trainer.data import load_labelled

    classifier = runtime.load(bundle)
    if not isinstance(classifier, runtime.Classifier):
        raise click.ClickException(f"{bundle}: not a sentiment bundle; calibrate fits classifiers")
    manifest = classifier.bundle.manifest
    languages = languages.split(",") if languages else manifest.get("languages") or [SHIPPED_LANGUAGES.get(bundle, "")]
    if not all(languages):
        raise click.UsageError(f"{bundle}: the manifest declares no languages; give --languages (e.g. en)")
    if data_path:
        validation = own = validation_rows(data_path, text_column, label_column, validation_split, split_seed)
    else:
        validation, own = _recorded_validation(manifest, bundle)
    test = load_labelled(test_data, text_column=test_text_column) if test_data else None
    written, test_raw = calibrate_bundle(classifier, validation, languages, test, apply=not record_only,
                                         temperature_rows=own if temperature_on_own_split else None)
    written["calibration"]["command"] = "attn-export " + " ".join(sys.argv[1:])
    write_calibration(classifier.bundle, written)
    calibration, diagnostics = written["calibration"], written["diagnostics"]
    line = (f"{classifier.bundle.path}: temperature {calibration['fitted_temperature']:.4f}"
            f"{'' if calibration['applied'] else ' (recorded, not applied: --record-only)'} on "
            f"{calibration['fitted_on']['rows']:,} validation rows "
            f"(ECE {calibration['validation']['ece_before']:.4f} -> {calibration['validation']['ece_after']:.4f}); "
            f"max OOV share {diagnostics['max_oov_share']:g}; scripts {', '.join(diagnostics['scripts'])}")
    if test is not None:
        on_test = calibration["test"]
        line += (f"; test ({on_test['rows']:,} rows): ECE {on_test['ece_before']:.4f} -> {on_test['ece_after']:.4f}, "
                 f"Brier {on_test['brier_before']:.4f} -> {on_test['brier_after']:.4f}, "
                 f"{on_test['labels_changed_at_0.5']} labels changed")
        plot_path = plot_path or str(classifier.bundle.path / "calibration.png")
        plot_reliability(test_raw, test.labels, calibration["fitted_temperature"], plot_path,
                         f"{classifier.bundle.path.name}: {Path(test_data).name}")
        line += f"; plot {plot_path}"
    click.echo(line, err=True)


def _recorded_validation(manifest: dict, bundle: str):
    """The validation rows the bundle's training selected on, carved again exactly as then: its recorded
    `attn-export train/distill` command parsed by that command's own options (split, extra validation
    files, their columns, detreebanking), then the same data loading (the test file and the extra
    training files are not read).
    Returns (all of them, the training file's own split alone)."""
    import shlex

    words = shlex.split((manifest.get("data") or {}).get("command", ""))
    if len(words) < 2 or words[1] not in ("train", "distill"):
        raise click.UsageError(f"{bundle}: the manifest records no train/distill command (e.g. a combined ensemble) "
                               "to carve its validation rows from; give them with --data")
    command = main.commands[words[1]]
    with command.make_context(words[1], words[2:]) as context:
        options = dict(context.params)
    # the extra training files are not read: validation rows never come from them (and a derived one,
    # such as counterfactual-edits' output under runs/, need not exist where the bundle is calibrated)
    data = _classifier_data({**options, "test_data": None, "extra_train_data": (), "extra_train_repeat": ()})
    return data.validation, data.own_validation


def _gate_data(validation_data: str | None, provenance: dict):
    """(texts, labels) for the int8 gate: --validation-data, else the recorded validation split."""
    from trainer.data import load_labelled, parse_label_map, read_table, shuffle_split
    from trainer.errors import ExportError

    if validation_data:
        data = read_table(validation_data)
        return data.texts, data.labels
    if not provenance.get("train"):
        raise ExportError("--quantize int8 needs --validation-data (no training/history.json next to the model)")
    table = {k: provenance[k] for k in ("text_column", "label_column", "quoting") if provenance.get(k)}
    table["label_map"] = parse_label_map(provenance.get("label_map"))
    _, validation = shuffle_split(load_labelled(provenance["train"], **table), provenance["validation_split"],
                                  provenance["split_seed"], provenance.get("limit"))
    return validation.texts, validation.labels


if __name__ == "__main__":
    main()
