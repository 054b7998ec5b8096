"""Parquet input and output for the commands (the `parquet` extra: pyarrow, imported only here).

Reading is streamed by row group (`ParquetFile.iter_batches`), never the whole table; the reader
offers what `runtime.io.tables.TableReader` offers (columns, require, records, size, position), so the
commands treat both alike: same column options, same row order, same errors. Writing goes through
the caller's temporary file (`runtime.io.atomic.OutputFile`), one row group per chunk of rows.
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path
from typing import Iterator

from runtime.errors import InputError, require_extra
from runtime.io.columns import KeptColumns
from runtime.io.diagnostics import DIAGNOSTIC_TYPES, DIAGNOSTICS, LIST_DIAGNOSTICS

BATCH_ROWS = 4096
INSTALL = "pip install 'attn-onnx[parquet]'"


def _pyarrow(what: str):
    return require_extra("parquet", "pyarrow", "pyarrow.parquet", needed_by=what), sys.modules["pyarrow.parquet"]


def is_text_type(pa, kind) -> bool:
    """A pyarrow type that holds texts: string, large string, dictionary-encoded (categorical) string."""
    if pa.types.is_dictionary(kind):
        kind = kind.value_type
    return pa.types.is_string(kind) or pa.types.is_large_string(kind) or pa.types.is_null(kind)


class ParquetReader:
    """A Parquet file row by row: `columns` from its schema; `records()` yields (row number, {column: value})."""

    format = "parquet"
    headerless = False  # column names come from the schema

    def __init__(self, path: str | Path):
        self.path = str(path)
        self.name = "<stdin>" if self.path == "-" else self.path
        if self.path == "-":
            raise InputError("<stdin>: Parquet input must be a file (its index is at the end); pass the file name")
        self._pa, pq = _pyarrow(f"{self.name}: reading Parquet")
        if not os.path.exists(self.path):
            raise InputError(f"{self.name}: no such file")
        if os.path.isdir(self.path):
            raise InputError(f"{self.name}: is a directory, expected a file")
        try:
            self._file = pq.ParquetFile(self.path)
        except (self._pa.ArrowException, OSError) as error:
            raise InputError(f"{self.name}: not a readable Parquet file ({str(error).splitlines()[0]})") from None
        self.columns = list(self._file.schema_arrow.names)
        # kept columns keep their types
        self.arrow_types = {field.name: field.type for field in self._file.schema_arrow}
        self.rows = self._file.metadata.num_rows
        self._size = os.path.getsize(self.path)
        self._done = 0

    def require(self, column: str, what: str = "column") -> None:
        if column not in self.columns:
            raise InputError(f"{self.name}: no {what} {column!r}; the columns are: "
                             f"{', '.join(map(repr, self.columns))}")

    @property
    def size(self) -> int:
        return self._size

    def position(self) -> int:
        """Bytes, in proportion to the rows read (row groups are read whole)."""
        return self._size if not self.rows else int(self._size * self._done / self.rows)

    def records(self) -> Iterator[tuple[int, dict]]:
        number = 0
        try:
            for batch in self._file.iter_batches(batch_size=BATCH_ROWS):
                for record in batch.to_pylist():
                    number += 1
                    self._done = number
                    yield number, record
        except (self._pa.ArrowException, OSError) as error:
            raise InputError(f"{self.name}: row {number + 1}: cannot read Parquet data "
                             f"({str(error).splitlines()[0]})") from None
        if number == 0:
            raise InputError(f"{self.name}: no data rows")


def explanation_type(pa):
    """The Parquet type of an explanation, for both engines: a list of {token, weight (float32)}."""
    return pa.list_(pa.struct([("token", pa.string()), ("weight", pa.float32())]))


def explanation_value(explanation) -> list[dict]:
    return [{"token": token, "weight": float(weight)} for token, weight in explanation]


def diagnostic_fields(pa) -> list:
    """The diagnostics columns (runtime/screening.py) as Parquet fields, after the results."""
    return [pa.field("token_count", pa.int32()), pa.field("oov_share", pa.float32()),
            pa.field("truncated_tokens", pa.int32()), pa.field("status", pa.string())]


class ParquetTable:
    """Result rows (id, [kept input columns,] then the command's own `fields`) as Parquet into `handle`
    (the binary buffer of the caller's temporary file). The id is text, as in CSV; kept columns have
    their input type when the input is Parquet (`kept_types`), else are text as in CSV (null stays
    null). Rows are buffered and written a row group at a time; `close()` writes the footer, without
    which the file is unreadable."""

    def __init__(self, handle, fields: list, kept=None, kept_types: dict | None = None, row_group_rows: int = 8192):
        pa, pq = _pyarrow("--format parquet")
        self.pa, self.kept, self.row_group_rows = pa, kept, row_group_rows
        self.kept_as_text = kept is not None and kept_types is None
        schema = [pa.field("id", pa.string())]
        if kept is not None:
            schema += [pa.field(out, kept_types[name] if kept_types else pa.string())
                       for name, out in zip(kept.names, kept.output_names)]
        schema += [pa.field(name, kind) for name, kind in fields]
        self.schema = pa.schema(schema)
        self.writer = pq.ParquetWriter(handle, self.schema, compression="zstd")
        self.columns: dict[str, list] = {field.name: [] for field in schema}

    def append(self, row_id, values: dict) -> None:
        """One row: its id (any JSON id becomes text, as in CSV) and the command's own `values`."""
        self.columns["id"].append(KeptColumns.cell(row_id))
        if self.kept is not None:
            for name, value in zip(self.kept.output_names, self.kept.pop()):
                self.columns[name].append(None if value is None
                                          else self.kept.cell(value) if self.kept_as_text else value)
        for name, value in values.items():
            self.columns[name].append(value)
        if len(self.columns["id"]) >= self.row_group_rows:
            self.flush()

    def flush(self) -> None:
        if self.columns["id"]:
            self.writer.write_table(self.pa.table(self.columns, schema=self.schema))
            self.columns = {name: [] for name in self.columns}

    def close(self) -> None:
        self.flush()
        self.writer.close()

    def abandon(self) -> None:
        """Drop the writer without its footer: the output failed and its temporary file is deleted
        (pyarrow's finaliser would otherwise write the footer to the closed file, an ignored error)."""
        self.writer.is_open = False


class ParquetOutput(ParquetTable):
    """attn-score's rows: id, [kept input columns,] probability, label[, explanation as a list of
    {token, weight}], token_count, oov_share, truncated_tokens, status (runtime/screening.py)."""

    def __init__(self, handle, explain: bool, kept=None, kept_types: dict | None = None, row_group_rows: int = 8192):
        pa = _pyarrow("--format parquet")[0]
        fields = [("probability", pa.float32()), ("label", pa.string())]
        if explain:
            fields.append(("explanation", explanation_type(pa)))
        fields += [(field.name, field.type) for field in diagnostic_fields(pa)]
        super().__init__(handle, fields, kept, kept_types, row_group_rows)
        self.explain = explain

    def write(self, row_id, probability: float | None, label: str, explanation, diagnostics) -> None:
        values = {"probability": None if probability is None else float(probability), "label": label}
        if self.explain:
            values["explanation"] = explanation_value(explanation)
        values.update(diagnostics.record())
        self.append(row_id, values)


class TranslationParquet(ParquetTable):
    """attn-translate's rows: id, [kept input columns,] source, translation, score (float32) and the
    DIAGNOSTICS (lists as JSON text), typed as the Ray engine writes them (TRANSLATION_FIELDS)."""

    def __init__(self, handle, kept=None, kept_types: dict | None = None, row_group_rows: int = 8192):
        pa = _pyarrow("--format parquet")[0]
        fields = [("source", pa.string()), ("translation", pa.string()), ("score", pa.float32())]
        fields += [(name, DIAGNOSTIC_TYPES[name](pa)) for name in DIAGNOSTICS]
        super().__init__(handle, fields, kept, kept_types, row_group_rows)

    def write(self, row_id, source: str, result, diagnostics: dict) -> None:
        values = {"source": source, "translation": result.text, "score": float(result.score)}
        values.update({name: json.dumps(diagnostics[name], ensure_ascii=False) if name in LIST_DIAGNOSTICS
                       else diagnostics[name] for name in DIAGNOSTICS})
        self.append(row_id, values)
