"""What attn-serve does with each kind of bundle: a request's texts become a batcher Job (tokenized on
the event loop, which also gives each row's token count for the budget), and a batch of rows becomes
one result dict per row on a worker thread. The row dicts are the ones attn-score / attn-translate
write as JSON lines, without the id (a row's place in `results` is its place in `texts`)."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from runtime.columns import explanation_records
from runtime.diagnostics import row_diagnostics
from runtime.serve.batcher import Job


class ServedClassifier:
    """A sentiment bundle: rows are (ids, length, text, explain k)."""

    task = "sentiment"

    def __init__(self, name: str, classifier):
        self.name, self.model = name, classifier

    def job(self, texts: list[str], explain: int = 0) -> Job:
        ids, lengths = self.model.tokenizer.encode(texts)
        payloads = [(ids[row, : lengths[row]], int(lengths[row]), text, explain) for row, text in enumerate(texts)]
        return Job(payloads, lengths.tolist())

    def run(self, key, payloads: list[tuple]) -> list[dict]:
        """One onnxruntime run over the rows (rows x longest row is within the model's batch_tokens)."""
        lengths = np.array([length for _, length, _, _ in payloads], dtype=np.int32)
        ids = np.zeros((len(payloads), max(int(lengths.max()), 1)), dtype=np.int32)  # (B, T)
        for row, (row_ids, length, _, _) in enumerate(payloads):
            ids[row, :length] = row_ids
        want_attention = any(explain for *_, explain in payloads)
        probabilities, attention = self.model.score_encoded(ids, lengths, want_attention=want_attention)
        return [self.record(payload, probability, attention[row] if want_attention else None)
                for row, (payload, probability) in enumerate(zip(payloads, probabilities))]

    def record(self, payload: tuple, probability, attention) -> dict:
        _, _, text, explain = payload
        record = {"probability": float(probability), "label": self.model.label(probability)}
        if explain:
            record["explanation"] = explanation_records(self.model.top_attended([text], [attention], explain)[0])
        return record


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
