"""Many input files for one job (the Ray engine's INPUT...): expanded (files, folders, globs; each file
once), their headers checked on the driver with the plain command's column rules, then read row by
row by the plain command's reader (`runtime.io.rows`). No model and no Ray here: the engine plans
with `check_inputs` and its read tasks call `file_rows`."""

from __future__ import annotations

import glob
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

from runtime.errors import InputError
from runtime.io.formats import DATA_SUFFIXES, is_data_file
from runtime.io.parquet import ParquetReader, is_text_type
from runtime.io.rows import open_input, read_rows
from runtime.io.tables import TableReader, printable_name


@dataclass(frozen=True)
class InputFile:
    """One input file as checked on the driver: where it is, how to read it, which columns."""

    name: str  # as the user wrote it (or found in their folder): used in ids and messages
    path: str  # absolute: what the workers open (their working directory is not ours)
    format: str  # csv, tsv, jsonl, lines, parquet
    text_column: str
    id_column: str  # "" = none: ids are "<name>:<row>"


def expand_inputs(inputs) -> list[tuple[str, str]]:
    """(name, absolute path) for every file named by INPUT...: a file, a folder (its data files,
    recursively, sorted; names starting with '.' or '_' skipped) or a glob. Each INPUT must give at
    least one file; a file named twice, under any name (symlinks resolved), is refused (its rows would be
    scored twice)."""
    found: list[str] = []
    for item in inputs:
        if item == "-":
            raise InputError("-: the Ray engine reads files (workers cannot read this stdin); pass file names")
        if os.path.isdir(item):
            matches = sorted(
                os.path.join(folder, name)
                for folder, subfolders, names in os.walk(item)
                for name in names
                if is_data_file(name)
                and not _hidden(Path(os.path.relpath(folder, item)))
            )
            if not matches:
                raise InputError(f"{item}: folder holds no data files ({', '.join(DATA_SUFFIXES)}, optionally .gz)")
        elif os.path.exists(item):
            matches = [item]
        elif glob.has_magic(item):
            matches = sorted(path for path in glob.glob(item, recursive=True) if os.path.isfile(path))
            if not matches:
                raise InputError(f"{item}: no file matches this pattern")
        else:
            raise InputError(f"{item}: no such file")
        found.extend(matches)
    seen: dict[str, tuple[str, str]] = {}  # the file itself (symlinks resolved) -> (name, absolute path)
    for name in found:
        real = os.path.realpath(name)
        if real in seen:
            raise InputError(f"{name}: named twice (also as {seen[real][0]}); each file is read once")
        seen[real] = name, os.path.abspath(name)
    return list(seen.values())


def _hidden(folder: Path) -> bool:
    """A folder inside an INPUT folder whose name (or a parent's) starts with '.' or '_'."""
    return any(part.startswith((".", "_")) for part in folder.parts if part != ".")


def check_inputs(inputs, fmt: str, encoding: str, quoting: str, text_column: str | None,
                 id_column: str | None) -> list[InputFile]:
    """Expand INPUT... and open every file's header on the driver (cheap), with attn-score's column
    rules, so a missing column or an unreadable file fails before the job starts."""
    files = []
    for name, path in expand_inputs(inputs):
        # the plain command's rules, once: the same reader picks the text and id columns
        reader, text, ident = open_input(path, fmt, encoding, quoting, text_column, id_column)
        if reader.format == "parquet":
            check_text_type(name, reader, text)
        files.append(InputFile(printable_name(name), path, reader.format, text, ident or ""))
    return files


def check_text_type(name: str, reader: ParquetReader, column: str) -> None:
    """A Parquet text column that cannot hold text (int64, binary) fails here, before Ray starts."""
    import pyarrow as pa

    kind = reader.arrow_types[column]
    if not is_text_type(pa, kind):
        raise InputError(f"{name}: column {column!r} is {kind}, expected text")


def file_rows(file: InputFile, encoding: str, quoting: str) -> Iterator[tuple[int, str, str]]:
    """(row, id, text) per data row of one file, read by the plain command's reader and row rules
    (runtime.io.rows: the same ids, nulls and errors); row counts data rows from 1 and ids default to
    '<name>:<row>'."""
    if file.format == "parquet":
        reader = ParquetReader(file.path)
    else:
        reader = TableReader(file.path, fmt=file.format, encoding=encoding, quoting=quoting,
                             text_column=file.text_column)
    reader.name = file.name  # messages name the file as the user wrote it
    for number, (row_id, text) in enumerate(read_rows(reader, file.text_column, file.id_column or None), 1):
        yield number, (row_id if file.id_column else f"{file.name}:{number}"), text
