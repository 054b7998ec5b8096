"""The row rules both engines share: which column is the text, which the id, what a null means.

`open_input` opens a file (CSV, TSV, JSONL, lines, Parquet; .gz) and picks its text and id columns,
failing before any work on a missing file or column; `read_rows` yields (id, text) per data row. The
local pipeline (`attn-score`, `attn-translate`) and the Ray engine (`runtime.engines.ray`) read
through these, so a file means the same to both.
"""

from __future__ import annotations

import json
import sys
from collections import deque
from typing import Iterator

from runtime.io.columns import KeptColumns
from runtime.io.formats import is_parquet
from runtime.io.parquet import ParquetReader
from runtime.io.tables import InputError, TableReader


def pick_text_column(reader: TableReader, requested: str | None) -> str:
    column = requested or "text"
    if reader.headerless and reader.name != "<stdin>":
        print(f"{reader.name}: one column and line 1 is not named {column!r}: every line is a text, line 1 "
              f"included (name the column with --text-column if line 1 is its header)", file=sys.stderr, flush=True)
    if reader.format in ("jsonl", "parquet") and not requested and reader.columns == [reader.columns[0]] != ["text"]:
        return reader.columns[0]  # JSON keys and Parquet columns are names: the only one is the text
    if requested or len(reader.columns) == 1 or "text" in reader.columns:
        reader.require(column, "text column")
        return column
    raise InputError(
        f"{reader.name}: no column 'text'; the columns are: {', '.join(map(repr, reader.columns))} "
        "(pick one with --text-column)"
    )


def open_input(path, fmt, encoding, quoting, text_column, id_column) -> tuple[TableReader, str, str | None]:
    """The reader, the text column and the id column (given, else 'id' when present, else None =
    row numbers). Fails before any work on a missing file or column."""
    if fmt == "parquet" or (fmt == "auto" and is_parquet(path)):
        reader = ParquetReader(path)  # streamed by row group; pyarrow is the `parquet` extra
    else:
        reader = TableReader(path, fmt=fmt, encoding=encoding, quoting=quoting, text_column=text_column or "text")
    text_column = pick_text_column(reader, text_column)
    if id_column:
        reader.require(id_column, "id column")
    elif "id" in reader.columns:
        id_column = "id"
    return reader, text_column, id_column


def read_rows(reader: TableReader, text_column: str, id_column: str | None, kept: KeptColumns | None = None,
              lines: deque | None = None, typed_ids: bool = False) -> Iterator[tuple[str, str]]:
    """(id, text) per data row; the id is the id column's value or the 1-based row number. With
    `kept`, each row's kept values are pushed for the writer; with `lines`, its line number. With
    `typed_ids`, a JSON number or boolean id stays one (the plain command's JSONL keeps its type;
    its CSV, TSV and Parquet write it as text with `KeptColumns.cell`), else it is text."""
    for number, (line, record) in enumerate(reader.records(), 1):
        if kept is not None:
            kept.push(record)
        if lines is not None:
            lines.append(line)
        if text_column not in record:  # JSONL rows may differ in their keys
            raise InputError(f"{reader.name}: line {line}: no field {text_column!r} in this row")
        text = record[text_column]
        if text is None:  # JSON null: scored as an empty text, never dropped
            text = ""
        elif not isinstance(text, str):
            raise InputError(f"{reader.name}: line {line}: field {text_column!r} is {type(text).__name__}, "
                             "expected text")
        yield (row_id(reader, line, record, id_column, typed_ids) if id_column else str(number)), text


def row_id(reader: TableReader, line: int, record: dict, column: str, typed: bool = False) -> str | int | float | bool:
    """The row's id: text as is, a JSON number or boolean as it is (`typed`) or as JSON writes it. A
    row without one (a JSONL row missing the field, or null) stops the run like a missing text: ids
    are never made up."""
    value = record.get(column)
    if isinstance(value, str):
        return value
    if value is None:
        raise InputError(f"{reader.name}: line {line}: field {column!r} is missing or null; every row needs an id "
                         "when the input has an id column (pick another with --id-column)")
    if isinstance(value, (bool, int, float)):
        return value if typed else json.dumps(value)
    raise InputError(f"{reader.name}: line {line}: field {column!r} is {type(value).__name__}, "
                     "expected a text or number id")
