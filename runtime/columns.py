"""--keep-columns / --keep-all: input columns copied to the output beside the results.

`KeptColumns.choose` checks the names against the input's columns before any work (an unknown one
is one line listing the columns). The row reader `push`es each row's values as it reads; every
writer (CSV, JSONL, Parquet) `pop`s them in the same input order as it writes that row's result,
so the scoring pipeline between them carries nothing extra. Output names that would clash with the
command's own columns (id, probability, label, ...) get an `input_` prefix.
"""

from __future__ import annotations

import json
from collections import deque

from runtime.io import InputError

SCORE_COLUMNS = ("id", "probability", "label", "explanation")
TRANSLATE_COLUMNS = ("id", "source", "translation", "score")


def explanation_records(explanation) -> list[dict]:
    """The one explanation format, for every output format: [{"token": ..., "weight": ...}, ...]."""
    return [{"token": token, "weight": round(float(weight), 4)} for token, weight in explanation]


class KeptColumns:
    def __init__(self, names: list[str], reserved: tuple[str, ...] = SCORE_COLUMNS):
        self.names = list(names)  # input column names, in the order asked for
        self.output_names = [f"input_{name}" if name in reserved else name for name in self.names]
        self._pending: deque[list] = deque()  # thread-safe: the reader thread appends, the writer pops

    @classmethod
    def choose(cls, source_name: str, columns: list[str], keep_columns: str | None, keep_all: bool,
               id_column: str | None, reserved: tuple[str, ...] = SCORE_COLUMNS) -> "KeptColumns | None":
        """None when nothing is kept. --keep-all keeps every input column but the id column (already
        the output's id); --keep-columns a,b keeps those, in that order."""
        if keep_all:
            return cls([column for column in columns if column != id_column], reserved)
        if not keep_columns:
            return None
        names = [name.strip() for name in keep_columns.split(",") if name.strip()]
        unknown = [name for name in names if name not in columns]
        if unknown:
            raise InputError(f"{source_name}: --keep-columns: no column {', '.join(map(repr, unknown))}; "
                             f"the columns are: {', '.join(map(repr, columns))}")
        return cls(list(dict.fromkeys(names)), reserved)

    def push(self, record: dict) -> None:
        """Remember one input row's values (a JSONL row without the key gives None)."""
        self._pending.append([record.get(name) for name in self.names])

    def pop(self) -> list:
        """The values of the oldest row not yet written (raw: str from CSV, any JSON value from JSONL)."""
        return self._pending.popleft()

    @staticmethod
    def cell(value) -> str:
        """A value as a CSV cell: text as is, None empty, numbers and JSON values as JSON."""
        if value is None:
            return ""
        return value if isinstance(value, str) else json.dumps(value, ensure_ascii=False)
