"""Training the translator: tokenizers from the one tokenizer module, teacher forcing, masked loss,
length-bucketed batches, and a Keras greedy decode that the exported graphs must reproduce."""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Callable

import numpy as np

from runtime.tokenizer import Tokenizer, TokenizerSpec
from trainer.tokenizer_fit import fit_tokenizer
from trainer.data import SentencePairs
from trainer.fit import feed, length_batches
from trainer.models.seq2seq import Seq2Seq, Seq2SeqConfig, build_seq2seq

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
    """Word tokenizers with punctuation kept as tokens; the target reserves <s> and </s>."""
    common = dict(punctuation="keep", html_breaks=False, truncation="post")
    source = fit_tokenizer(pairs.sources, config.source_vocab, TokenizerSpec(max_len=config.max_source_len, **common))
    target = fit_tokenizer(pairs.targets, config.target_vocab, TokenizerSpec(max_len=config.max_target_len - 1, **common),
                           reserved=(START, END))
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
    verbose: int = 2,
    log: Callable[[str], None] = print,
) -> TranslatorResult:
    """Fit both tokenizers on `train`, train with teacher forcing, keep the best validation-loss epoch."""
    import keras

    started = time.perf_counter()
    keras.utils.set_random_seed(config.seed)
    source_tok, target_tok = make_tokenizers(train, config)
    config.source_vocab, config.target_vocab = source_tok.vocab_size, target_tok.vocab_size
    log(f"data: {len(train)} train / {len(validation)} validation pairs, vocabularies {source_tok.vocab_size} "
        f"(source) / {target_tok.vocab_size} (target)")
    model = build_seq2seq(config)
    model.trainer.compile(
        optimizer=keras.optimizers.Adam(config.learning_rate, clipnorm=5.0),
        loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True, ignore_class=0),
    )
    train_feed, train_steps = feed(_batches(train, source_tok, target_tok, config.batch_size, config.seed), PAIR_SIGNATURE)
    val_feed, val_steps = feed(_batches(validation, source_tok, target_tok, config.batch_size, None), PAIR_SIGNATURE)
    stop = keras.callbacks.EarlyStopping(monitor="val_loss", patience=patience or config.epochs, restore_best_weights=True)
    history = model.trainer.fit(train_feed, steps_per_epoch=train_steps, validation_data=val_feed, validation_steps=val_steps,
                                epochs=config.epochs, shuffle=False, callbacks=[stop], verbose=verbose).history
    losses = history.get("val_loss", [float("nan")])
    best = int(np.nanargmin(losses))
    return TranslatorResult(model, source_tok, target_tok, {k: [float(v) for v in vs] for k, vs in history.items()},
                            float(losses[best]), best + 1, time.perf_counter() - started)


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
