"""What attn-serve does with each kind of bundle: a request's texts become a batcher Job (tokenized on
the event loop, which also gives each row's token count for the budget), and a batch of rows becomes
one result dict per row on a worker thread. The row dicts are the ones attn-score / attn-translate
write as JSON lines, without the id (a row's place in `results` is its place in `texts`)."""

from __future__ import annotations

from pathlib import Path
from typing import NamedTuple

import numpy as np

from runtime.io.columns import explanation_records
from runtime.io.diagnostics import row_diagnostics
from runtime.screening import Diagnostics
from runtime.serve.batcher import Job


class Row(NamedTuple):
    """One text of a scoring request, as the worker needs it."""

    ids: np.ndarray  # the ids the model reads (after truncation)
    length: int
    text: str
    explain: int
    diagnostics: Diagnostics  # what the screening found (status, token count, OOV share, truncation)
    threshold: float
    force: bool


class ServedClassifier:
    """A sentiment bundle: each row is a `Row`; its result is `Classifier.record`, as attn-score's rows."""

    task = "sentiment"

    def __init__(self, name: str, classifier):
        self.name, self.model = name, classifier

    def job(self, texts: list[str], explain: int = 0, threshold: float = 0.5, force: bool = False) -> Job:
        ids, lengths, totals = self.model.tokenizer.encode_counted(texts)
        screened = self.model.screen.check(texts, ids, lengths, totals)
        rows = [Row(ids[row, : lengths[row]], int(lengths[row]), text, explain, screened[row], threshold, force)
                for row, text in enumerate(texts)]
        return Job(rows, lengths.tolist())

    def run(self, key, rows: list[Row]) -> list[dict]:
        """One onnxruntime run over the rows (rows x longest row is within the model's batch_tokens)."""
        lengths = np.array([row.length for row in rows], dtype=np.int32)
        ids = np.zeros((len(rows), max(int(lengths.max()), 1)), dtype=np.int32)  # (B, T)
        for index, row in enumerate(rows):
            ids[index, : row.length] = row.ids
        want_attention = any(row.explain for row in rows)
        probabilities, attention = self.model.score_encoded(ids, lengths, want_attention=want_attention)
        return [self.record(row, probability, attention[index] if want_attention else None)
                for index, (row, probability) in enumerate(zip(rows, probabilities))]

    def record(self, row: Row, probability, attention) -> dict:
        explanation = None
        if row.explain:
            explanation = explanation_records(self.model.top_attended([row.text], [attention], row.explain)[0])
        return self.model.record(float(probability), row.diagnostics, row.threshold, row.force, explanation)


class ServedTranslator:
    """A translation bundle: rows are sentences; rows merge only with rows of the same beam size."""

    task = "translation"

    def __init__(self, name: str, translator):
        self.name, self.model = name, translator

    def job(self, texts: list[str], beam_size: int = 4) -> Job:
        _, lengths = self.model.source_tokenizer.encode(texts)
        return Job(list(texts), lengths.tolist(), key=beam_size)

    def run(self, beam_size: int, sentences: list[str]) -> list[dict]:
        """Per sentence the translation, its score and attn-translate's per-row diagnostics."""
        return [{"translation": result.text, "score": float(result.score), **row_diagnostics(result)}
                for result in self.model.translate(sentences, beam_size=beam_size)]


def served(name: str, model) -> ServedClassifier | ServedTranslator:
    """The serving adapter of a loaded Classifier or Translator."""
    import runtime

    return ServedClassifier(name, model) if isinstance(model, runtime.Classifier) else ServedTranslator(name, model)


def model_name(spec: str) -> str:
    """What a --model is called in requests: a shipped short name as given, a folder by its name."""
    import runtime

    return spec if spec in runtime.SHIPPED else Path(spec).expanduser().resolve().name
