"""--keep-columns / --keep-all: input columns copied to the output beside the results.

`KeptColumns.choose` checks the names against the input's columns before any work (an unknown one
is one line listing the columns). The row reader `push`es each row's values as it reads; every
writer (CSV, JSONL, Parquet) `pop`s them in the same input order as it writes that row's result,
so the scoring pipeline between them carries nothing extra. Output names that would clash with the
command's own columns (id, probability, label, ...) get an `input_` prefix, repeated until the name
is unique (`label` beside an `input_label` becomes `input_input_label`): no column is ever lost.

Values that CSV and JSON cannot hold as they are (Parquet timestamps, decimals, binary) are written
as text: ISO 8601 for dates and times, the decimal's digits, base64 for bytes (`plain`).
"""

from __future__ import annotations

import base64
import datetime
import decimal
import json
from collections import deque

from runtime.io.tables import InputError

SCORE_COLUMNS = ("id", "probability", "label", "explanation", "token_count", "oov_share", "truncated_tokens", "status")
TRANSLATE_COLUMNS = ("id", "source", "translation", "score")


def explanation_records(explanation) -> list[dict]:
    """The one explanation format, for every output format: [{"token": ..., "weight": ...}, ...]."""
    return [{"token": token, "weight": round(float(weight), 4)} for token, weight in explanation]


class KeptColumns:
    def __init__(self, names: list[str], reserved: tuple[str, ...] = SCORE_COLUMNS):
        self.names = list(names)  # input column names, in the order asked for
        self.output_names = unique_names(self.names, reserved)
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
        """A value as a CSV cell: text as is, None empty, numbers and JSON values as JSON; timestamps,
        decimals and bytes as `plain` text."""
        if value is None:
            return ""
        if isinstance(value, str):
            return value
        if isinstance(value, _PLAIN_TYPES):
            return plain(value)
        return json.dumps(value, ensure_ascii=False, default=plain)


def unique_names(names: list[str], reserved: tuple[str, ...]) -> list[str]:
    """Output names for kept input columns: a name taken by the command's own columns, or by another kept
    column's name, gets `input_` in front, again until no other column has it."""
    taken, result = set(reserved), []
    for name in names:
        out = name
        while out in taken or (out != name and out in names):
            out = f"input_{out}"
        taken.add(out)
        result.append(out)
    return result


_PLAIN_TYPES = (datetime.date, datetime.time, datetime.timedelta, decimal.Decimal, bytes, bytearray, memoryview)


def plain(value):
    """A value json cannot write, as text (json.dumps's `default`): ISO 8601 for dates, times and
    timestamps (with their offset when they have one), ISO 8601 durations, a decimal's exact digits,
    base64 for bytes."""
    if isinstance(value, (datetime.date, datetime.time)):  # datetime is a date
        return value.isoformat()
    if isinstance(value, datetime.timedelta):
        return f"PT{value.total_seconds():g}S"
    if isinstance(value, decimal.Decimal):
        return str(value)
    if isinstance(value, (bytes, bytearray, memoryview)):
        return base64.b64encode(bytes(value)).decode("ascii")
    raise TypeError(f"Object of type {type(value).__name__} is not JSON serializable")
