"""Robustness to minimal edits: counterfactually revised IMDB reviews (CAD; Kaushik, Hovy & Lipton,
ICLR 2020), scored through a real `attn-score` from raw text.

    python -m bench robustness --model imdb [--model path/to/other/bundle ...]

Each pair is an IMDB review (the original) and a human revision that flips its sentiment with as few
edits as possible. The pair's rows share `batch_id`; the original comes first (checked on the shared
files: no second row of a pair is an IMDB review, while the first rows are IMDB training reviews,
give or take markup). Reported per bundle: accuracy on the originals, on the revisions, and the share
of pairs whose both halves are right (the figure that a model keying on topic words cannot fake).
attn-score runs with --force-labels (every row gets the model's label, as the accuracy figures count
them); a label other than the expected one, `unknown` included, counts as wrong.
"""

from __future__ import annotations

import csv
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

from runtime.io.tables import InputError, TableReader

DEFAULT_DATA = "../shared/datasets/cad/dev.tsv.gz"


@dataclass(frozen=True)
class PairScores:
    pairs: int
    originals: float
    revisions: float
    both: float


def read_pairs(path: str, text_column: str = "Text", label_column: str = "Sentiment",
               pair_column: str = "batch_id") -> tuple[list[str], list[str], list[int]]:
    """(texts, expected labels 'positive'/'negative', pair index per row); every pair has exactly two rows."""
    texts, labels, pair_of, seen, index = [], [], [], {}, {}
    reader = TableReader(path)
    for column in (text_column, label_column, pair_column):
        reader.require(column)
    for line, record in reader.records():
        key = record[pair_column]
        if key not in seen:
            index[key] = len(index)
        seen.setdefault(key, []).append(line)
        pair_of.append(index[key])
        texts.append(record[text_column] or "")
        labels.append(str(record[label_column]).strip().lower())
    bad = [key for key, lines in seen.items() if len(lines) != 2]
    if bad:
        raise InputError(f"{path}: {pair_column} {bad[0]!r} has {len(seen[bad[0]])} rows (lines {seen[bad[0]]}); "
                         "a pair has 2")
    return texts, labels, pair_of


def attn_score_labels(model: str, texts: list[str]) -> list[str]:
    """The labels a real `attn-score` subprocess writes for `texts` (one JSONL row each), in order."""
    import json

    with tempfile.TemporaryDirectory() as tmp:
        source, scores = Path(tmp) / "texts.jsonl", Path(tmp) / "scores.csv"
        source.write_text("".join(json.dumps({"text": t}) + "\n" for t in texts), encoding="utf-8")
        command = [sys.executable, "-m", "runtime.cli", str(source), "--model", model, "-o", str(scores),
                   "--force-labels"]  # every row's label, as the accuracy figures count them
        done = subprocess.run(command, capture_output=True, text=True)
        if done.returncode != 0:
            raise InputError(f"{model}: attn-score failed: {done.stderr.strip()}")
        with open(scores, newline="", encoding="utf-8") as handle:
            return [row["label"] for row in csv.DictReader(handle)]


def pair_scores(predicted: list[str], labels: list[str], pair_of: list[int]) -> PairScores:
    """Originals are the first row of each pair, revisions the second."""
    first: dict[int, bool] = {}
    second: dict[int, bool] = {}
    for guess, truth, pair in zip(predicted, labels, pair_of):
        (second if pair in first else first)[pair] = guess == truth
    n = len(first)
    return PairScores(n, sum(first.values()) / n, sum(second.values()) / n,
                      sum(first[p] and second[p] for p in first) / n)
