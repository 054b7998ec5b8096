"""Training the translator: tokenizers from the one tokenizer module, teacher forcing, masked loss,
length-bucketed batches, and a Keras greedy decode that the exported graphs must reproduce."""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import numpy as np

from runtime.tokenizer import Tokenizer, TokenizerSpec
from trainer.data import SentencePairs
from trainer.fit import feed, length_batches
from trainer.models.seq2seq import Seq2Seq, Seq2SeqConfig, build_seq2seq
from trainer.tokenizer_fit import fit_tokenizer

START, END = "<s>", "</s>"
PAIR_SIGNATURE = ((((None, None), "int32"), ((None, None), "int32")), ((None, None), "int32"))


@dataclass
class TranslatorResult:
    model: Seq2Seq
    source_tokenizer: Tokenizer
    target_tokenizer: Tokenizer
    history: dict = field(default_factory=dict)
    validation_loss: float = float("nan")
    best_epoch: int = 0
    elapsed_s: float = 0.0


def make_tokenizers(pairs: SentencePairs, config: Seq2SeqConfig) -> tuple[Tokenizer, Tokenizer]:
    """Both sides in `config.tokenizer` mode, cased unless `config.lowercase`; the target reserves <s>
    and </s>. SentencePiece: the target spells unseen characters as bytes, so it never needs <oov>.
    Word: punctuation kept as tokens."""
    common = dict(mode=config.tokenizer, lowercase=config.lowercase, punctuation="keep",
                  html_breaks=False, truncation="post")
    subwords = config.tokenizer == "sentencepiece"
    source = fit_tokenizer(pairs.sources, config.source_vocab, TokenizerSpec(max_len=config.max_source_len, **common))
    target = fit_tokenizer(pairs.targets, config.target_vocab,
                           TokenizerSpec(max_len=config.max_target_len - 1, **common),
                            reserved=(START, END), byte_fallback=subwords)
    return source, target


def encode_targets(tokenizer: Tokenizer, texts: list[str]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """previous = <s> y₁ … y_L and next = y₁ … y_L </s>, right-padded (N, L + 1), and L + 1."""
    ids, lengths = tokenizer.encode(texts)
    steps = lengths + 1
    previous = np.zeros((len(texts), ids.shape[1] + 1), dtype=np.int32)
    following = np.zeros_like(previous)
    previous[:, 0] = tokenizer.id_of(START)
    previous[:, 1:] = ids
    following[:, :-1] = ids
    following[np.arange(len(texts)), lengths] = tokenizer.id_of(END)
    return previous, following, steps


class PairBatches:
    """((source, previous), next) batches of similar source length, each padded to its own longest row."""

    def __init__(self, source, source_lengths, previous, following, target_lengths, batch_size, seed=None):
        self.arrays = (source, source_lengths, previous, following, target_lengths)
        self.batch_size = batch_size
        self.rng = None if seed is None else np.random.default_rng(seed)
        self.count = len(length_batches(source_lengths, batch_size, None))

    def __len__(self):
        return self.count

    def __iter__(self):
        source, source_lengths, previous, following, target_lengths = self.arrays
        for rows in length_batches(source_lengths, self.batch_size, self.rng):
            s = max(int(source_lengths[rows].max()), 1)
            t = int(target_lengths[rows].max())
            yield (source[rows, :s], previous[rows, :t]), following[rows, :t]


def _batches(pairs, source_tok, target_tok, batch_size, seed):
    source, source_lengths = source_tok.encode(pairs.sources)
    previous, following, target_lengths = encode_targets(target_tok, pairs.targets)
    return PairBatches(source, source_lengths, previous, following, target_lengths, batch_size, seed)


def train_translator(
    train: SentencePairs,
    validation: SentencePairs,
    config: Seq2SeqConfig,
    patience: int | None = None,
    time_budget_s: float | None = None,
    verbose: int = 2,
    log: Callable[[str], None] = print,
    init_from: str | Path | None = None,
) -> TranslatorResult:
    """Fit both tokenizers on `train`, train with teacher forcing, keep the best validation-loss epoch.
    With `init_from` (a folder holding training/), continue that model instead: its tokenizers, weights
    and Adam state (moments and step count), so the run resumes where the saved one stopped; `config`
    must then describe the same network (the CLI takes it from the folder)."""
    import keras

    started = time.perf_counter()
    keras.utils.set_random_seed(config.seed)
    if init_from is None:
        source_tok, target_tok = make_tokenizers(train, config)
    else:
        source_tok = Tokenizer.load(Path(init_from) / TRAINING / "source_tokenizer.json")
        target_tok = Tokenizer.load(Path(init_from) / TRAINING / "target_tokenizer.json")
    config.source_vocab, config.target_vocab = source_tok.vocab_size, target_tok.vocab_size
    log(f"data: {len(train)} train / {len(validation)} validation pairs, vocabularies {source_tok.vocab_size} "
        f"(source) / {target_tok.vocab_size} (target)")
    model = build_seq2seq(config)
    model.trainer.compile(
        optimizer=keras.optimizers.Adam(config.learning_rate, clipnorm=5.0),
        loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True, ignore_class=0),
    )
    if init_from is not None:
        _restore(model, source_tok, Path(init_from) / TRAINING, log)
    train_feed, train_steps = feed(_batches(train, source_tok, target_tok, config.batch_size, config.seed),
                                   PAIR_SIGNATURE)
    val_feed, val_steps = feed(_batches(validation, source_tok, target_tok, config.batch_size, None), PAIR_SIGNATURE)
    stop = keras.callbacks.EarlyStopping(monitor="val_loss", patience=patience or config.epochs,
                                         restore_best_weights=True)
    callbacks = [stop] + ([time_budget_callback(time_budget_s, started, log)] if time_budget_s else [])
    history = model.trainer.fit(train_feed, steps_per_epoch=train_steps, validation_data=val_feed,
                                validation_steps=val_steps, epochs=config.epochs, shuffle=False, callbacks=callbacks,
                                verbose=verbose).history
    losses = history.get("val_loss", [float("nan")])
    best = int(np.nanargmin(losses))
    return TranslatorResult(model, source_tok, target_tok, {k: [float(v) for v in vs] for k, vs in history.items()},
                            float(losses[best]), best + 1, time.perf_counter() - started)


def time_budget_callback(budget_s: float, started: float, log: Callable[[str], None]):
    """A Keras callback that stops after the epoch that would let the next one (as long as the last)
    end past `budget_s` seconds from `started`."""
    import keras

    class TimeBudget(keras.callbacks.Callback):
        def __init__(self, budget_s: float, started: float, log: Callable[[str], None]):
            super().__init__()
            self.budget_s, self.started, self.log, self.epoch_started = budget_s, started, log, started

        def on_epoch_begin(self, epoch, logs=None):
            self.epoch_started = time.perf_counter()

        def on_epoch_end(self, epoch, logs=None):
            now = time.perf_counter()
            if now - self.started + (now - self.epoch_started) > self.budget_s:
                self.log(f"time budget: stopping after epoch {epoch + 1} ({now - self.started:.0f} s of "
                         f"{self.budget_s:.0f} s)")
                self.model.stop_training = True

    return TimeBudget(budget_s, started, log)


TRAINING = "training"


def save_translator_training(result: TranslatorResult, folder: str | Path, extra: dict | None = None) -> Path:
    """folder/training/{seq2seq.weights.h5, config.json, source_tokenizer.json, target_tokenizer.json,
    history.json}: what rebuilds the Keras model (the bench's Keras baseline, further training)."""
    import json

    target = Path(folder) / TRAINING
    target.mkdir(parents=True, exist_ok=True)
    result.model.trainer.save_weights(target / "seq2seq.weights.h5")
    (target / "config.json").write_text(json.dumps(result.model.config.to_dict(), indent=2) + "\n", encoding="utf-8")
    result.source_tokenizer.save(target / "source_tokenizer.json")
    result.target_tokenizer.save(target / "target_tokenizer.json")
    summary = {"history": result.history, "validation_loss": result.validation_loss, "best_epoch": result.best_epoch,
               "elapsed_s": round(result.elapsed_s, 1), **(extra or {})}
    (target / "history.json").write_text(json.dumps(summary, indent=2) + "\n", encoding="utf-8")
    return target


def _restore(model: Seq2Seq, source_tok: Tokenizer, source: Path, log: Callable[[str], None]) -> None:
    """Weights and Adam's state (moments and step count: Keras keeps the optimizer's variables in the
    .weights.h5 it saves, and loads them when the optimizer is built first; weights of an older run
    load alone, said)."""
    if not (source / "seq2seq.weights.h5").is_file():
        raise FileNotFoundError(f"{source.parent}: no {TRAINING}/seq2seq.weights.h5 to continue from")
    probe, _ = source_tok.encode(["a"])
    model.trainer.predict_on_batch([probe, np.zeros((1, 1), np.int32)])  # build the variables
    optimizer = model.trainer.optimizer
    optimizer.build(model.trainer.trainable_variables)
    learning_rate = float(optimizer.learning_rate.numpy())
    model.trainer.load_weights(source / "seq2seq.weights.h5")
    optimizer.learning_rate.assign(learning_rate)  # the saved state holds the old rate: this run's is asked for
    step = int(optimizer.iterations.numpy())
    log(f"init-from {source.parent}: weights and Adam state (step {step})" if step else
        f"init-from {source.parent}: weights only (the saved run kept no Adam state: Adam starts afresh)")


def load_translator_training(folder: str | Path) -> TranslatorResult:
    """The Keras model and tokenizers that `save_translator_training` wrote into folder/training/."""
    import json

    source = Path(folder) / TRAINING
    if not (source / "seq2seq.weights.h5").is_file():
        raise FileNotFoundError(f"{folder}: no {TRAINING}/seq2seq.weights.h5 "
                                "(train it with attn-export train-translator)")
    config = Seq2SeqConfig.from_dict(json.loads((source / "config.json").read_text(encoding="utf-8")))
    model = build_seq2seq(config)
    source_tok = Tokenizer.load(source / "source_tokenizer.json")
    target_tok = Tokenizer.load(source / "target_tokenizer.json")
    probe_source, _ = source_tok.encode(["a"])
    model.trainer.predict_on_batch([probe_source, np.zeros((1, 1), np.int32)])  # build the variables
    model.trainer.load_weights(source / "seq2seq.weights.h5")
    return TranslatorResult(model, source_tok, target_tok)


def keras_greedy(model: Seq2Seq, source_tok: Tokenizer, target_tok: Tokenizer, sentences: list[str],
                 max_length: int | None = None) -> list[list[int]]:
    """Greedy decode with the Keras encoder and step model (the reference for the ONNX graphs).
    Returns each sentence's target ids up to and including </s> (or max_length ids)."""
    max_length = max_length or model.config.max_target_len
    step = model.step_model()
    source, _ = source_tok.encode(sentences)
    encoded = {k: np.asarray(v) for k, v in model.encoder.predict_on_batch(source).items()}
    h, c, states, mask = encoded["h"], encoded["c"], encoded["states"], source != 0
    previous = np.full(len(sentences), target_tok.id_of(START), dtype=np.int32)
    end = target_tok.id_of(END)
    outputs = [[] for _ in sentences]
    done = np.zeros(len(sentences), dtype=bool)
    for _ in range(max_length):
        result = step.predict_on_batch([previous, h, c, states, mask])
        h, c = np.asarray(result["next_h"]), np.asarray(result["next_c"])
        previous = np.asarray(result["log_probs"]).argmax(-1).astype(np.int32)
        for i in np.flatnonzero(~done):
            outputs[i].append(int(previous[i]))
        done |= previous == end
        if done.all():
            break
    return outputs
