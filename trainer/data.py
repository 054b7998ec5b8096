"""Labelled text for training: CSV/TSV/JSONL tables (optionally .gz) and the aclImdb folder layout.

Tables are read with `runtime.io.tables.TableReader`, the same reader that serves `attn-score`, so a bad
file fails the same way in both. Labels are mapped to 0/1; an unknown label names its line.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from runtime.io.tables import InputError, TableReader

NO_GROUP = -1
DEFAULT_LABEL_MAP = {"0": 0, "1": 1, "neg": 0, "pos": 1, "negative": 0, "positive": 1}


@dataclass
class LabelledTexts:
    texts: list[str]
    labels: np.ndarray  # (N,) int32, 0 or 1 (float32 soft targets in [0, 1] when distilling)
    source: str
    # (N,) int64 or None: rows sharing a value >= 0 train in one batch (the two halves of a counterfactual
    # pair); NO_GROUP rows batch alone. None: no row is grouped.
    groups: np.ndarray | None = None

    def __len__(self) -> int:
        return len(self.texts)

    def take(self, indices: np.ndarray) -> "LabelledTexts":
        groups = None if self.groups is None else self.groups[indices]
        return LabelledTexts([self.texts[i] for i in indices], self.labels[indices], self.source, groups)

    def group_ids(self) -> np.ndarray:
        """`groups`, with NO_GROUP for every row when there are none."""
        return np.full(len(self), NO_GROUP, np.int64) if self.groups is None else self.groups

    def regrouped(self, offset: int) -> "LabelledTexts":
        """A copy whose group ids are shifted by `offset` (so two files' or two copies' groups never merge)."""
        if self.groups is None:
            return self
        groups = np.where(self.groups >= 0, self.groups + offset, NO_GROUP)
        return LabelledTexts(self.texts, self.labels, self.source, groups)

    def __add__(self, other: "LabelledTexts") -> "LabelledTexts":
        """Rows of both, in order (e.g. IMDB reviews + SST-2 phrases); the source names both. Group ids
        are kept as they are: shift one side first (`regrouped`) if both may use the same ids."""
        source = self.source if other.source == self.source else f"{self.source} + {other.source}"
        labels = np.concatenate([self.labels, other.labels])  # soft (float) targets stay float: distillation
        groups = (None if self.groups is None and other.groups is None
                  else np.concatenate([self.group_ids(), other.group_ids()]))
        return LabelledTexts(self.texts + other.texts,
                             labels if labels.dtype.kind == "f" else labels.astype(np.int32), source, groups)


def parse_label_map(text: str | None) -> dict[str, int]:
    """"pos=1,neg=0" -> {"pos": 1, "neg": 0}; None -> the default map (0/1, neg/pos, negative/positive)."""
    if not text:
        return dict(DEFAULT_LABEL_MAP)
    mapping = {}
    for item in text.split(","):
        key, sep, value = item.partition("=")
        if not sep or value.strip() not in ("0", "1"):
            raise InputError(f"--label-map: item {item!r} must look like NAME=0 or NAME=1")
        mapping[key.strip()] = int(value)
    return mapping


def read_table(
    path: str | Path,
    text_column: str = "text",
    label_column: str = "label",
    label_map: dict[str, int] | None = None,
    quoting: str = "auto",
    group_column: str | None = None,
) -> LabelledTexts:
    """Texts and 0/1 labels from a CSV/TSV/JSONL file. Empty text cells are kept as "".
    A column may be given as comma-separated candidates ("sentence,Text"): the first the file has is
    read, so one option serves files that name the column differently. Labels match exactly, else
    case-insensitively ("Positive" = "positive"). With `group_column`, a file holding that column
    gets `groups`: rows sharing a value there share an id (an empty cell: no group); a file without it
    gets none."""
    label_map = label_map or DEFAULT_LABEL_MAP
    folded = {key.lower(): value for key, value in label_map.items()}
    reader = TableReader(path, quoting=quoting)
    text_column = _pick_column(reader, text_column, "text column")
    label_column = _pick_column(reader, label_column, "label column")
    grouped = bool(group_column) and group_column in reader.columns
    texts, labels, groups, ids = [], [], [], {}
    for line, record in reader.records():
        if grouped:
            value = record.get(group_column)
            key = "" if value is None else str(value).strip()
            groups.append(ids.setdefault(key, len(ids)) if key else NO_GROUP)
        raw = record.get(label_column)
        key = str(raw).strip() if raw is not None else None
        label = None if key is None else label_map.get(key, folded.get(key.lower()))
        if label is None:
            raise InputError(
                f"{reader.name}: line {line}: unknown label {raw!r} in column {label_column!r}; "
                f"known labels: {', '.join(sorted(label_map))} (set --label-map)"
            )
        text = record.get(text_column)
        texts.append("" if text is None else str(text))
        labels.append(label)
    return LabelledTexts(texts, np.asarray(labels, dtype=np.int32), str(path),
                         np.asarray(groups, dtype=np.int64) if grouped else None)


def _pick_column(reader: TableReader, candidates: str, what: str) -> str:
    """The first of the comma-separated `candidates` that the file has (the reader names them all if none)."""
    names = [name.strip() for name in candidates.split(",") if name.strip()] or [candidates]
    chosen = next((name for name in names if name in reader.columns), names[0])
    reader.require(chosen, what if len(names) == 1 else f"{what} (any of {', '.join(map(repr, names))})")
    return chosen


def read_aclimdb(root: str | Path, split: str = "train") -> LabelledTexts:
    """The Large Movie Review Dataset layout: ROOT/{split}/{pos,neg}/*.txt (ROOT/{pos,neg} also works)."""
    root = Path(root)
    base = root / split if (root / split).is_dir() else root
    texts, labels = [], []
    for name, label in (("neg", 0), ("pos", 1)):
        folder = base / name
        if not folder.is_dir():
            raise InputError(f"{root}: no folder {folder}; expected the aclImdb layout {split}/pos and {split}/neg")
        for file in sorted(folder.glob("*.txt")):
            texts.append(file.read_text(encoding="utf-8", errors="replace"))
            labels.append(label)
    if not texts:
        raise InputError(f"{root}: no .txt reviews under {base}/pos or {base}/neg")
    return LabelledTexts(texts, np.asarray(labels, dtype=np.int32), str(root))


def load_labelled(path: str | Path, **table_options) -> LabelledTexts:
    """A folder is read as aclImdb, anything else as a table."""
    if Path(path).is_dir():
        return read_aclimdb(path)
    return read_table(path, **table_options)


def shuffle_split(
    data: LabelledTexts, validation_fraction: float, seed: int, limit: int | None = None
) -> tuple[LabelledTexts, LabelledTexts]:
    """Deterministic shuffle (the shared IMDB file is sorted by label), optional limit, then
    (train, validation). The validation rows are the last `validation_fraction` of the shuffle."""
    if not 0 < validation_fraction < 1:
        raise InputError(f"validation fraction must be between 0 and 1, got {validation_fraction}")
    order = np.random.default_rng(seed).permutation(len(data))
    if limit is not None:
        order = order[:limit]
    n_validation = max(1, int(round(len(order) * validation_fraction)))
    if len(order) - n_validation < 1:
        raise InputError(f"{data.source}: {len(order)} rows are too few to carve a validation split")
    return data.take(order[:-n_validation]), data.take(order[-n_validation:])


# === Sentence pairs (translation) ===
@dataclass
class SentencePairs:
    sources: list[str]
    targets: list[str]
    source: str

    def __len__(self) -> int:
        return len(self.sources)

    def take(self, indices) -> "SentencePairs":
        return SentencePairs([self.sources[i] for i in indices], [self.targets[i] for i in indices], self.source)


def read_pairs(path: str | Path, source_column: str, target_column: str) -> SentencePairs:
    """Source/target sentences from a CSV/TSV/JSONL table (e.g. Tatoeba's eng/spa TSV)."""
    reader = TableReader(path)
    reader.require(source_column, "source column")
    reader.require(target_column, "target column")
    sources, targets = [], []
    for line, record in reader.records():
        source, target = record.get(source_column) or "", record.get(target_column) or ""
        if not source.strip() or not target.strip():
            raise InputError(f"{reader.name}: line {line}: "
                             f"empty {source_column if not source.strip() else target_column!r} sentence")
        sources.append(source)
        targets.append(target)
    return SentencePairs(sources, targets, str(path))


def split_pairs(pairs: SentencePairs, validation_fraction: float, test_fraction: float, seed: int = 0):
    """(train, validation, test), carved by sentence group: rows that share a source or a target
    sentence (case-insensitive) stay in one split, so no sentence leaks across splits. A group's
    split follows a hash of its first sentence and the seed: deterministic and stable."""
    import hashlib

    parent = list(range(len(pairs)))

    def find(i):
        while parent[i] != i:
            parent[i] = parent[parent[i]]
            i = parent[i]
        return i

    first_seen: dict[tuple[str, str], int] = {}
    for i, (s, t) in enumerate(zip(pairs.sources, pairs.targets)):
        for key in (("s", s.strip().lower()), ("t", t.strip().lower())):
            j = first_seen.setdefault(key, i)
            parent[find(i)] = find(j)
    buckets: dict[str, list[int]] = {"train": [], "validation": [], "test": []}
    for i in range(len(pairs)):
        root = find(i)
        key = f"{seed}:{pairs.sources[root].strip().lower()}".encode()
        u = int.from_bytes(hashlib.sha1(key).digest()[:8], "big") / 2**64
        buckets["test" if u < test_fraction
                else "validation" if u < test_fraction + validation_fraction else "train"].append(i)
    return tuple(pairs.take(buckets[name]) for name in ("train", "validation", "test"))
