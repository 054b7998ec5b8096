"""Sentiment classifier over an ONNX bundle: length-aware batching, probabilities, explanations."""

from __future__ import annotations

from typing import Sequence

import numpy as np

from runtime.bundle import Bundle, BundleError, check_vocabulary
from runtime.screening import Diagnostics, Screen, apply_temperature, temperature_of, verdict
from runtime.tokenizer import text_list

# `python -m bench tune`: 2-4k beat 16k-64k by 15-40 % on 2 cores (less padding, cache-sized)
DEFAULT_BATCH_TOKENS = 4_096


def token_budget_batches(lengths: np.ndarray, batch_tokens: int) -> list[np.ndarray]:
    """Row indices sorted by length, cut so that rows x (longest row in the batch) <= batch_tokens
    (a single row longer than the budget forms its own batch)."""
    order = np.argsort(lengths, kind="stable")
    batches, start = [], 0
    while start < len(order):
        stop = start + 1
        # sorted ascending: the batch's width is the length of its last row
        while stop < len(order) and (stop + 1 - start) * max(int(lengths[order[stop]]), 1) <= batch_tokens:
            stop += 1
        batches.append(order[start:stop])
        start = stop
    return batches


def check_threshold(threshold: float) -> float:
    """`threshold` when it is a probability (0 to 1), else ValueError (nan too), as the CLI refuses it."""
    if not 0 <= threshold <= 1:  # every comparison with nan is false
        raise ValueError(f"threshold must be a probability from 0 to 1, got {threshold!r}")
    return threshold


class Classifier:
    """Scores texts with a sentiment bundle. Thread-safe: `predict`, `predict_labels` and `explain`
    may be called from several threads at once (onnxruntime sessions are)."""

    def __init__(self, bundle: Bundle, provider: str = "auto", threads: int = 0,
                 batch_tokens: int = DEFAULT_BATCH_TOKENS, session_options=None):
        if bundle.task != "sentiment":
            raise BundleError(f"{bundle.path}: task is {bundle.task!r}, a Classifier needs a 'sentiment' bundle")
        if batch_tokens < 1:
            raise ValueError(f"batch_tokens must be >= 1, got {batch_tokens}")
        self.bundle = bundle
        self.tokenizer = bundle.tokenizer
        self.labels: list[str] = list(bundle.manifest["labels"])
        self.batch_tokens = batch_tokens
        self.temperature = temperature_of(bundle.manifest)  # calibration, applied to every probability
        self.screen = Screen.from_manifest(bundle.manifest, self.tokenizer.vocab)  # each row's status
        # checked against the contract
        self._session, self.provider = bundle.open_session("model", provider, threads, session_options)
        check_vocabulary(self._session, bundle.graph_path("model"), "tokens", "probability", self.tokenizer.vocab_size)

    def _score(self, texts: Sequence[str], want_attention: bool) -> tuple[np.ndarray, list[np.ndarray]]:
        """Probabilities (N,) and, if asked, each row's attention over its own tokens."""
        return self.score_encoded(*self.tokenizer.encode(texts), want_attention=want_attention)

    def score(self, texts: Sequence[str], threshold: float = 0.5, force: bool = False, explain: int = 0) -> list[dict]:
        """One record per text, as attn-score's JSONL rows: probability (None unless the status is ok,
        or `force`), label (`unknown` likewise), token_count, oov_share, truncated_tokens, status, and
        with `explain=K` the K most attended (token, weight) pairs."""
        texts = list(texts)
        ids, lengths, totals = self.tokenizer.encode_counted(texts)
        probabilities, attention = self.score_encoded(ids, lengths, want_attention=explain > 0)
        explanations = self.top_attended(texts, attention, explain) if explain else [None] * len(texts)
        return [self.record(p, row, threshold, force, explanation)
                for p, row, explanation in zip(probabilities, self.screen.check(texts, ids, lengths, totals),
                                               explanations)]

    def record(self, probability: float, diagnostics: Diagnostics, threshold: float = 0.5, force: bool = False,
               explanation=None) -> dict:
        """The one row record (Python API, attn-score's writers, the Ray engine)."""
        probability, label = verdict(probability, diagnostics, self.labels, threshold, force)
        extra = {} if explanation is None else {"explanation": explanation}
        return {"probability": probability, "label": label, **extra, **diagnostics.record()}

    def score_encoded(self, ids: np.ndarray, lengths: np.ndarray,
                      want_attention: bool = False) -> tuple[np.ndarray, list[np.ndarray]]:
        """`_score` on ids already made by `tokenizer.encode` (the streaming pipeline tokenizes on
        its reader thread and scores on its workers)."""
        probabilities = np.empty(len(lengths), dtype=np.float32)
        attention: list[np.ndarray] = [None] * len(lengths) if want_attention else []
        outputs = ["probability", "attention"] if want_attention else ["probability"]
        for rows in token_budget_batches(lengths, self.batch_tokens):
            width = max(int(lengths[rows[-1]]), 1)  # pad to this batch's own longest row
            result = self._session.run(outputs, {"tokens": np.ascontiguousarray(ids[rows, :width])})
            probabilities[rows] = result[0]
            if want_attention:
                for row, weights in zip(rows, result[1]):
                    attention[row] = weights[: lengths[row]]
        return apply_temperature(probabilities, self.temperature), attention

    def predict(self, texts: str | Sequence[str]) -> np.ndarray | float:
        """Probability of the second label (positive) for each text, float32 (N,), calibrated; a number
        for every text, whatever its status (`score` says which rows the model could not read); for one
        bare str, its probability as a float."""
        texts, single = text_list(texts)
        probabilities = self._score(texts, want_attention=False)[0]
        return float(probabilities[0]) if single else probabilities

    def predict_labels(self, texts: str | Sequence[str], threshold: float = 0.5) -> list[str] | str:
        """Label name for each text (for one bare str, its label): the second label when probability >= threshold."""
        check_threshold(threshold)  # also when there are no texts
        texts, single = text_list(texts)
        labels = [self.label(p, threshold) for p in self.predict(texts)]
        return labels[0] if single else labels

    def label(self, probability: float, threshold: float = 0.5) -> str:
        """The label name of one probability: the second label at or above `threshold` (0 to 1)."""
        return self.labels[int(probability >= check_threshold(threshold))]

    def explain(self, texts: str | Sequence[str], top_k: int = 5) -> list:
        """Per text (for one bare str, for it alone), the `top_k` most attended (word, weight) pairs,
        highest first. Words are the text's as the model saw them (after truncation), OOV words
        included; a SentencePiece model's pieces are joined into words, each weighing its pieces' sum."""
        return self.score_and_explain(texts, top_k)[1]

    def score_and_explain(self, texts: str | Sequence[str], top_k: int = 5) -> tuple:
        """Probabilities and explanations from one pass over the model (one of each for a bare str)."""
        texts, single = text_list(texts)
        probabilities, attention = self._score(texts, want_attention=True)
        explanations = self.top_attended(texts, attention, top_k)
        return (float(probabilities[0]), explanations[0]) if single else (probabilities, explanations)

    def top_attended(self, texts: Sequence[str], attention: Sequence[np.ndarray],
                     top_k: int) -> list[list[tuple[str, float]]]:
        """Per text, its `top_k` most attended (word, weight) pairs from its attention row
        (`Tokenizer.words`; top_k None: all of them)."""
        if top_k is not None and (not isinstance(top_k, int) or isinstance(top_k, bool) or top_k < 0):
            raise ValueError(f"top_k must be a whole number >= 0 (or None for every token), got {top_k!r}")
        explanations = []
        for text, weights in zip(texts, attention):
            words, word_weights = self.tokenizer.words(self.tokenizer.tokenize(text), weights)
            top = np.argsort(-np.asarray(word_weights), kind="stable")[:top_k]
            explanations.append([(words[i], word_weights[i]) for i in top])
        return explanations
