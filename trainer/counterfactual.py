"""The sentences a counterfactual revision changed, as labelled training rows.

CAD (Kaushik, Hovy & Lipton, ICLR 2020) pairs each IMDB review with a human revision that flips its
sentiment through minimal edits; the two halves share a `batch_id`. Most of a pair is the same text
with both labels, so a review-level loss learns little from it about *what* flipped the label. The
sentences that differ between the halves are where the flip happened ("Long, boring, blasphemous." /
"Long, fascinating, soulful."): written out as short rows, each with its own half's label, they give
sentence-level supervision on exactly the edits (negation among them), from human-written text.

    attn-export counterfactual-edits ../shared/datasets/cad/train.tsv.gz --out runs/cad-edits.tsv.gz
"""

from __future__ import annotations

import difflib
import re
from collections import defaultdict
from pathlib import Path

from runtime.io.atomic import OutputFile
from runtime.io.tables import InputError, TableReader

# A sentence ends at . ! ? (closing quotes or brackets may follow, and stay with it) before white space,
# or at an HTML line break, the review's paragraph mark (or a line break).
_SENTENCE_END = re.compile(r"([.!?][\"')\]]*)\s+")
_HTML_BREAK = re.compile(r"<br\s*/?>", re.IGNORECASE)
_WORD = re.compile(r"\w")
COLUMNS = ("Sentiment", "Text", "batch_id")


def sentences(text: str) -> list[str]:
    """`text` cut into sentences, each stripped; pieces without a word character are dropped."""
    marked = _SENTENCE_END.sub("\\1\n", _HTML_BREAK.sub("\n", text))
    return [piece.strip() for piece in marked.split("\n") if _WORD.search(piece)]


def changed_sentences(first: str, second: str) -> tuple[list[str], list[str]]:
    """(sentences only `first` has, sentences only `second` has), by a sentence-level diff."""
    a, b = sentences(first), sentences(second)
    only_a, only_b = [], []
    for tag, i1, i2, j1, j2 in difflib.SequenceMatcher(a=a, b=b, autojunk=False).get_opcodes():
        if tag != "equal":
            only_a += a[i1:i2]
            only_b += b[j1:j2]
    return only_a, only_b


def read_pairs(path: str | Path, text_column: str = "Text", label_column: str = "Sentiment",
               pair_column: str = "batch_id") -> list[tuple[str, tuple[tuple[str, str], tuple[str, str]]]]:
    """[(pair id, ((label, text), (label, text)))] in file order; a pair id held by other than two
    rows, or a pair whose halves share a label, is refused naming the id."""
    reader = TableReader(path)
    for column, what in ((text_column, "text column"), (label_column, "label column"), (pair_column, "pair column")):
        reader.require(column, what)
    halves: dict[str, list[tuple[str, str]]] = defaultdict(list)
    for line, record in reader.records():
        pair = record.get(pair_column)
        if pair is None or str(pair).strip() == "":
            raise InputError(f"{reader.name}: line {line}: empty {pair_column!r}")
        text = record.get(text_column)
        halves[str(pair)].append((str(record.get(label_column)), "" if text is None else str(text)))
    for pair, rows in halves.items():
        if len(rows) != 2:
            raise InputError(f"{reader.name}: {pair_column} {pair!r} has {len(rows)} rows; a pair has 2")
        if rows[0][0] == rows[1][0]:
            raise InputError(f"{reader.name}: {pair_column} {pair!r}: both halves are labelled {rows[0][0]!r}; "
                             "a counterfactual pair has opposite labels")
    return [(pair, (rows[0], rows[1])) for pair, rows in halves.items()]


def write_edits(pairs_path: str | Path, out: str | Path) -> dict:
    """Write the changed sentences of every pair (TSV, gzipped if `out` ends in .gz) with the label of
    the half each comes from and the pair's id; refuses an existing `out`. Returns counts."""
    out = Path(out)
    if out.exists():
        raise InputError(f"{out}: exists; not overwritten (remove it or choose another --out)")
    pairs = read_pairs(pairs_path)
    rows = []
    for pair, ((label_a, text_a), (label_b, text_b)) in pairs:
        only_a, only_b = changed_sentences(text_a, text_b)
        rows += [(label_a, s, pair) for s in only_a] + [(label_b, s, pair) for s in only_b]
    out.parent.mkdir(parents=True, exist_ok=True)
    with OutputFile(out, [pairs_path]) as handle:  # plain TSV: no quoting, as CAD's; complete or absent
        handle.write("\t".join(COLUMNS) + "\n")
        for label, sentence, pair in rows:  # tabs and line breaks inside a sentence become spaces
            handle.write(f"{label}\t{' '.join(sentence.split())}\t{pair}\n")
    labels = [label for label, _, _ in rows]
    return {"pairs": len(pairs), "rows": len(rows),
            "labels": {name: labels.count(name) for name in sorted(set(labels))}}
