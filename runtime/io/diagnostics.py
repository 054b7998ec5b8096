"""What attn-translate tells about each row, and the stderr notes that name the rows to look at.

Per row (CSV, JSONL and Parquet output, both engines): `source_tokens` (source tokens read: all of
them, sentences and windows included), `segments` (parts translated one by one; 1 = whole),
`windowed` (a sentence longer than the model's limit was cut into windows of words), `copied`
(source spans copied into the translation), `missing` (source numbers or unreadable words the
translation lacks), `oov` (source tokens the model cannot read, plus target tokens it cannot spell).
"""

from __future__ import annotations

import json
from typing import ClassVar

DIAGNOSTICS = ("source_tokens", "segments", "windowed", "copied", "missing", "oov")
LIST_DIAGNOSTICS = ("copied", "missing")  # JSON text in CSV and Parquet cells
DIAGNOSTIC_TYPES = {  # Arrow types (--engine ray), given the pyarrow module so that it is imported lazily
    "source_tokens": lambda pa: pa.int64(), "segments": lambda pa: pa.int64(), "windowed": lambda pa: pa.bool_(),
    "copied": lambda pa: pa.string(), "missing": lambda pa: pa.string(), "oov": lambda pa: pa.int64()}
FIRST_ROWS = 5  # rows named per note


def row_diagnostics(translation) -> dict:
    """The DIAGNOSTICS of one `runtime.Translation`, as JSON values."""
    return {"source_tokens": len(translation.source_ids), "segments": translation.segments,
            "windowed": translation.windowed, "copied": [c["source"] for c in translation.copied],
            "missing": list(translation.missing), "oov": translation.oov}


def csv_cells(diagnostics: dict) -> list[str]:
    """The DIAGNOSTICS as CSV cells: numbers as digits, booleans true/false, lists as JSON."""
    return [json.dumps(diagnostics[name], ensure_ascii=False) for name in DIAGNOSTICS]


class Notes:
    """Collects the rows worth a look (`add` each row's diagnostics), then `lines()` for stderr."""

    KINDS: ClassVar[dict] = {  # kind: (is it flagged, what the note says)
        "oov": (lambda d: d["oov"] > 0, ("hold <oov>: source words or characters outside the model's vocabulary (it "
                                         "cannot read them), or a translated word it cannot spell")),
        "split": (lambda d: d["segments"] > 1 and not d["windowed"],
                  "were longer than the model's limit and were translated sentence by sentence"),
        "windowed": (lambda d: d["windowed"], ("hold a sentence longer than the model's limit, translated in windows "
                                               "of words (see column 'windowed')")),
        "missing": (lambda d: bool(d["missing"]), ("lack a source number or unreadable word in their translation (see "
                                                   "column 'missing')")),
    }

    def __init__(self, unit: str = "line"):
        self.unit = unit  # what the labels count: "lines 3, 7" (attn-translate), "rows a.csv:3" (--engine ray)
        self.rows = 0
        self.flagged: dict[str, list[str]] = {kind: [] for kind in self.KINDS}
        self.counts = dict.fromkeys(self.KINDS, 0)

    def add(self, label: str, diagnostics: dict) -> None:
        self.rows += 1
        for kind, (flagged, _) in self.KINDS.items():
            if flagged(diagnostics):
                self.counts[kind] += 1
                if len(self.flagged[kind]) < FIRST_ROWS:
                    self.flagged[kind].append(label)

    def lines(self) -> list[str]:
        out = []
        for kind, (_, says) in self.KINDS.items():
            if self.counts[kind]:
                more = ", ..." if self.counts[kind] > len(self.flagged[kind]) else ""
                named = self.flagged[kind]
                out.append(f"{self.counts[kind]:,} of {self.rows:,} sentence{'' if self.rows == 1 else 's'} {says}: "
                           f"{self.unit}{'' if len(named) == 1 and not more else 's'} {', '.join(named)}{more}")
        return out
