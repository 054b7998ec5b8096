"""Translator over a translation bundle: encoder.onnx once per batch, decoder_step.onnx per step.

Greedy and beam search share one decode loop (`_decode`); a strategy only decides which
(hypothesis, token) pairs survive each step. Scores are length-normalised log-probabilities: the sum
of the chosen tokens' log-probabilities (the end token included) divided by their number.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Sequence

import numpy as np

from runtime.bundle import Bundle, BundleError, tokenizer_from_manifest

START, END = "<s>", "</s>"
_NO_SPACE_BEFORE = re.compile(r" ([.,!?;:%)\]}'»])")
_NO_SPACE_AFTER = re.compile(r"([¿¡(\[{«]) ")


def detokenize(tokens: Sequence[str]) -> str:
    """Tokens back to text: spaces between words, none before closing punctuation or after opening."""
    return _NO_SPACE_AFTER.sub(r"\1", _NO_SPACE_BEFORE.sub(r"\1", " ".join(tokens)))


@dataclass
class Translation:
    text: str
    tokens: list[str]  # target tokens, the end token excluded
    score: float  # length-normalised log-probability
    source_tokens: list[str]
    attention: np.ndarray | None = None  # (target steps incl. end, source tokens) when asked for


class Greedy:
    """One hypothesis per sentence; the next token is the most probable one."""

    width = 1

    def select(self, scores, lengths, finished, log_probs, end_id):
        # log_probs (B, 1, V); finished rows continue with the end token at no cost
        token = log_probs[:, 0].argmax(-1)
        gain = np.take_along_axis(log_probs[:, 0], token[:, None], -1)[:, 0]
        token = np.where(finished[:, 0], end_id, token)
        gain = np.where(finished[:, 0], 0.0, gain)
        parent = np.zeros((len(token), 1), dtype=np.int64)
        return parent, token[:, None], scores + gain[:, None], lengths + (~finished).astype(np.int64)


class Beam:
    """`width` hypotheses per sentence, ranked by length-normalised score."""

    def __init__(self, width: int):
        if width < 1:
            raise ValueError(f"beam size must be >= 1, got {width}")
        self.width = width

    def select(self, scores, lengths, finished, log_probs, end_id):
        batch, width, vocab = log_probs.shape
        candidates = scores[:, :, None] + log_probs  # (B, k, V)
        # a finished hypothesis has one continuation: itself (end token, no cost, no length)
        frozen = np.full((vocab,), -np.inf)
        frozen[end_id] = 0.0
        candidates = np.where(finished[:, :, None], scores[:, :, None] + frozen, candidates)
        new_lengths = np.broadcast_to((lengths + (~finished))[:, :, None], candidates.shape)
        ranked = (candidates / np.maximum(new_lengths, 1)).reshape(batch, -1)
        best = np.argsort(-ranked, axis=-1, kind="stable")[:, :width]  # (B, k)
        parent, token = best // vocab, best % vocab
        flat = candidates.reshape(batch, -1)
        return parent, token, np.take_along_axis(flat, best, -1), np.take_along_axis(new_lengths.reshape(batch, -1), best, -1)


class Translator:
    """Translates sentences with a translation bundle. Thread-safe like the Classifier."""

    def __init__(self, bundle: Bundle, provider: str = "auto", threads: int = 0, batch_size: int = 64):
        if bundle.task != "translation":
            raise BundleError(f"{bundle.path}: task is {bundle.task!r}, a Translator needs a 'translation' bundle")
        self.bundle = bundle
        self.source_tokenizer = bundle.tokenizer
        self.target_tokenizer = tokenizer_from_manifest(bundle.manifest["target_tokenizer"], f"{bundle.path}: field 'target_tokenizer'")
        self.start_id = self.target_tokenizer.id_of(START)
        self.end_id = self.target_tokenizer.id_of(END)
        self.max_length = bundle.manifest["max_target_len"]  # validated by the schema, no default here
        self.batch_size = batch_size
        self._encoder, self.provider = bundle.open_session("encoder", provider, threads)
        self._step, _ = bundle.open_session("decoder_step", provider, threads)

    def translate(self, sentences: Sequence[str], beam_size: int = 4, max_length: int | None = None,
                  return_attention: bool = False) -> list[Translation]:
        """Translate each sentence (beam_size 1 = greedy). Batches are sorted by source length. A
        sentence with no tokens (empty, blank) gets an empty translation without decoding."""
        sentences = list(sentences)
        strategy = Greedy() if beam_size == 1 else Beam(beam_size)
        ids, lengths = self.source_tokenizer.encode(sentences) if sentences else (np.zeros((0, 1), np.int32), np.zeros(0, np.int32))
        results: list[Translation | None] = [None] * len(sentences)
        for row in np.flatnonzero(lengths == 0):  # nothing to translate: an empty translation, never an invention
            results[row] = Translation("", [], 0.0, [], np.zeros((1, 0), np.float32) if return_attention else None)
        order = np.argsort(lengths, kind="stable")
        order = order[lengths[order] > 0]
        for start in range(0, len(order), self.batch_size):
            rows = order[start : start + self.batch_size]
            width = max(int(lengths[rows].max()), 1)
            decoded = self._decode(np.ascontiguousarray(ids[rows, :width]), strategy, max_length or self.max_length)
            for row, (tokens, score, attention) in zip(rows, decoded):
                words = self.target_tokenizer.decode(tokens)
                source_tokens = self.source_tokenizer.tokenize(sentences[row])
                results[row] = Translation(detokenize(words), words, score, source_tokens,
                                           attention[:, : len(source_tokens)] if return_attention else None)
        return results

    def _decode(self, source: np.ndarray, strategy, max_length: int):
        """The one decode loop. Returns per row (token ids without the end token, score, attention)."""
        batch, width = len(source), strategy.width
        states, h, c = self._encoder.run(["states", "h", "c"], {"source": source})
        repeat = lambda array: np.repeat(array, width, axis=0)  # noqa: E731  (B, ...) -> (B*k, ...)
        states, h, c, mask = repeat(states), repeat(h), repeat(c), repeat(source != 0)
        scores = np.full((batch, width), -np.inf)
        scores[:, 0] = 0.0  # one live hypothesis to start from
        lengths = np.zeros((batch, width), dtype=np.int64)
        finished = np.zeros((batch, width), dtype=bool)
        tokens = np.zeros((batch, width, 0), dtype=np.int64)
        attention = np.zeros((batch, width, 0, source.shape[1]), dtype=np.float32)
        previous = np.full(batch * width, self.start_id, dtype=np.int32)
        for _ in range(max_length):
            log_probs, h, c, weights = self._step.run(
                ["log_probs", "next_h", "next_c", "attention"],
                {"previous": previous, "h": h, "c": c, "states": states, "source_mask": mask},
            )
            parent, token, scores, lengths = strategy.select(scores, lengths, finished, log_probs.reshape(batch, width, -1), self.end_id)
            rows = (np.arange(batch)[:, None] * width + parent).reshape(-1)  # flat index of each survivor's parent
            h, c = h[rows], c[rows]
            was_finished = np.take_along_axis(finished, parent, -1)
            tokens = np.concatenate([np.take_along_axis(tokens, parent[:, :, None], 1), token[:, :, None]], -1)
            attention = np.concatenate([attention[np.arange(batch)[:, None], parent], weights[rows].reshape(batch, width, 1, -1)], 2)
            finished = was_finished | (token == self.end_id)
            previous = token.reshape(-1).astype(np.int32)
            if finished.all():
                break
        normalised = scores / np.maximum(lengths, 1)
        best = normalised.argmax(-1)
        out = []
        for b in range(batch):
            steps = int(lengths[b, best[b]])
            ids = [int(t) for t in tokens[b, best[b], :steps] if t != self.end_id]
            out.append((ids, float(normalised[b, best[b]]), attention[b, best[b], :steps]))
        return out
