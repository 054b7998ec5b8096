"""Rows that hold a cue (a negation, by default), the minority label's copied until both labels are equally
many among them: an extra training file that takes away what the cue alone says about the label.

Measured on SST-2's training phrases (2026-12-02, with `NEGATION` below, as the command reports it): 4,615 of
the phrases holding a negation are negative and 2,270 positive. A network trained on them learns
"not" as a negative word, so "Not bad at all." reads negative. Adding the positive cue rows again (and in
CAD's changed sentences, where the cue rows lean the same way) leaves the cue saying nothing about the
label by itself: what it negates has to decide. The rows are real training rows, copied; nothing is made up.

    attn-export balance-cue ../shared/datasets/sst2/train.tsv.gz --text-column sentence --out runs/sst2-neg.tsv.gz
"""

from __future__ import annotations

import re
from collections import Counter, defaultdict
from pathlib import Path

import numpy as np

from runtime.io.atomic import OutputFile
from runtime.io.tables import InputError, TableReader

# a negation word, or the clitic "n't" (raw "doesn't" and treebank "does n't" alike), any case
NEGATION = r"\b(?:not|no|never|nothing|nobody|none|nor|neither|nowhere|without|cannot)\b|n't\b"


def _matching(path: str | Path, out: Path, text_column: str, label_column: str, cue: str) -> tuple[str, int, list]:
    """(the table's name, rows read, [(label, text)] of the rows whose text matches `cue`, in file order, white
    space collapsed). Refuses, before reading a row, an existing `out`, a bad expression or a missing column;
    then a row without a label."""
    if out.exists():
        raise InputError(f"{out}: exists; not overwritten (remove it or choose another --out)")
    try:
        pattern = re.compile(cue, re.IGNORECASE)
    except re.error as error:
        raise InputError(f"--cue {cue!r}: not a regular expression ({error})") from None
    reader = TableReader(path)
    reader.require(text_column, "text column")
    reader.require(label_column, "label column")
    kept: list[tuple[str, str]] = []
    rows = 0
    for line, record in reader.records():
        rows += 1
        text, label = record.get(text_column), record.get(label_column)
        if label is None or str(label).strip() == "":
            raise InputError(f"{reader.name}: line {line}: empty {label_column!r}")
        if text is not None and pattern.search(str(text)):
            kept.append((str(label), " ".join(str(text).split())))  # tabs and line breaks become spaces
    return reader.name, rows, kept


def _write(out: Path, source: str | Path, label_column: str, text_column: str, rows: list[tuple[str, str]]) -> None:
    """`rows` as a plain TSV (no quoting; gzipped if `out` ends in .gz), complete or absent."""
    out.parent.mkdir(parents=True, exist_ok=True)
    with OutputFile(out, [source]) as handle:
        handle.write(f"{label_column}\t{text_column}\n")
        for label, text in rows:
            handle.write(f"{label}\t{text}\n")


def balance_cue(path: str | Path, out: str | Path, *, text_column: str = "text", label_column: str = "label",
                cue: str = NEGATION, seed: int = 0) -> dict:
    """Write (TSV, gzipped if `out` ends in .gz; refuses an existing `out`) the rows of `path` whose text
    matches `cue` and whose label is the rarer one among those rows, as many times as it takes to make
    both labels equally many: whole copies, the remainder a seeded sample without repeats. Columns:
    `label_column`, `text_column`, as read. Returns the counts before and the rows written."""
    out = Path(out)
    name, rows, kept = _matching(path, out, text_column, label_column, cue)
    matched: dict[str, list[str]] = defaultdict(list)
    for label, text in kept:
        matched[label].append(text)
    if len(matched) != 2:
        raise InputError(f"{name}: the rows matching the cue hold {len(matched)} label(s) "
                         f"({', '.join(sorted(matched)) or 'none'}); balancing needs both of two")
    (rare, few), (_, many) = sorted(((label, texts) for label, texts in matched.items()),
                                         key=lambda item: (len(item[1]), item[0]))
    copies, remainder = divmod(len(many) - len(few), len(few))
    rng = np.random.default_rng(seed)
    written = few * copies + [few[k] for k in sorted(rng.choice(len(few), remainder, replace=False))]
    _write(out, path, label_column, text_column, [(rare, text) for text in written])
    return {"rows": rows, "matched": {label: len(texts) for label, texts in sorted(matched.items())},
            "label": rare, "written": len(written)}


def lexicon_words(path: str | Path, *, text_column: str = "sentence", label_column: str = "label",
                  label: str = "0") -> list[str]:
    """The one-word rows of `path` labelled `label` (SST-2's training phrases hold 1,946 such negative words:
    "bad", "dull", "hate", …), lower-cased, sorted. Refused in one line when there are none."""
    reader = TableReader(path)
    reader.require(text_column, "text column")
    reader.require(label_column, "label column")
    words = set()
    for _, record in reader.records():
        text = " ".join(str(record.get(text_column) or "").split())
        if text and " " not in text and str(record.get(label_column)).strip() == label and re.search(r"\w", text):
            words.add(text.lower())
    if not words:
        raise InputError(f"{reader.name}: no one-word row labelled {label!r} in {label_column!r}; "
                         "nothing to build the lexicon from")
    return sorted(words)


def negated_cue(words: list[str]) -> str:
    """A regular expression: a negation word or "n't", then, as the next word, one of `words`
    ("not bad", "didn't hate", treebank "did n't hate", "never dull")."""
    alternatives = "|".join(re.escape(word) for word in sorted(words, key=len, reverse=True))
    return rf"(?:{NEGATION})\s+(?:{alternatives})(?![\w'])"


def cue_rows(path: str | Path, out: str | Path, *, text_column: str = "text", label_column: str = "label",
             cue: str = NEGATION) -> dict:
    """Write (TSV, gzipped if `out` ends in .gz; refuses an existing `out`) every row of `path` whose text
    matches `cue`, once, with its own label: columns `label_column`, `text_column`, as read. For weighing a
    phenomenon up with `--extra-train-repeat` while keeping what the data says about it (both labels).
    Returns the rows read and the rows written per label."""
    out = Path(out)
    name, rows, kept = _matching(path, out, text_column, label_column, cue)
    if not kept:
        raise InputError(f"{name}: no row matches the cue; nothing to write")
    _write(out, path, label_column, text_column, kept)
    return {"rows": rows, "written": len(kept), "labels": dict(sorted(Counter(label for label, _ in kept).items()))}
