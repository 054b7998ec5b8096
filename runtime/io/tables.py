"""Streaming readers and atomic writers for CSV, TSV and JSONL (optionally .gz), with clear errors.

Every problem with an input file becomes an `InputError` whose message names the file and, where
it applies, the line and the column, and says what would fix it. The trainer reads its labelled
data through the same reader, so both sides fail the same way.
"""

from __future__ import annotations

import codecs
import csv
import gzip
import io
import itertools
import json
import os
import stat
import sys
import zlib
from pathlib import Path
from typing import IO, Iterator

from runtime.errors import InputError
from runtime.io.formats import TABLE_FORMATS as FORMATS
from runtime.io.formats import detect_format

LONG_FIELD = 2**31 - 1  # reviews can be megabytes long; the csv module's default cap is 128 KB


def _next_row(reader) -> list[str] | None:
    """The reader's next row (None at the end) with the field cap raised for this call only: the cap
    is global to the csv module, so it is restored for other code in the process."""
    previous = csv.field_size_limit(LONG_FIELD)
    try:
        return next(reader, None)
    finally:
        csv.field_size_limit(previous)



def printable_name(name: str) -> str:
    """A file name as valid UTF-8 text, for a page or a table column: bytes that are not UTF-8 (kept by
    Python as surrogate escapes) are written as \\xNN, so 'bad\\xffname.csv' still names the file."""
    return name.encode("utf-8", "surrogateescape").decode("utf-8", "backslashreplace")


def _stdin_binary() -> IO[bytes]:
    """stdin's bytes through a reader of our own on fd 0 (left open). The streaming pipeline reads
    on a daemon thread; had it been blocked inside sys.stdin.buffer at Ctrl-C, the interpreter would
    abort at exit ("could not acquire lock for <stdin> at interpreter shutdown")."""
    try:
        fd = sys.stdin.fileno()
    except (AttributeError, OSError, ValueError):  # a replaced stdin (click's CliRunner)
        return sys.stdin.buffer
    return open(fd, "rb", closefd=False)


class TableReader:
    """Reads a table row by row. `columns` is known as soon as the reader is built (header read),
    so a missing column fails before any work is done. `records()` yields (line, {column: value}).

    TSV is read without quote processing by default (`quoting="none"`): tab-separated files such as
    NSMC hold literal `"` characters. CSV uses standard quoting, strictly: a malformed quote fails.
    """

    def __init__(self, path: str | Path, fmt: str = "auto", encoding: str = "utf-8", quoting: str = "auto",
                 text_column: str | None = None):
        """text_column (the commands that read texts pass it; the trainer does not): the one-column
        rule. Stdin with fmt auto is a table only when its first line is a JSON object or names
        text_column, else one text per line; a one-column CSV/TSV whose line 1 is not text_column
        has no header: line 1 is the first text (`headerless`), never silently taken as a name."""
        self.path = str(path)
        self.name = "<stdin>" if self.path == "-" else self.path
        self.text_column = text_column
        self.headerless = False
        self._header_row: list[str] | None = None
        self.format = detect_format(self.path) if fmt == "auto" else fmt
        if self.format not in FORMATS:
            raise InputError(f"{self.name}: unknown format {fmt!r}; use one of {', '.join(FORMATS)}")
        if quoting == "auto":
            quoting = "none" if self.format == "tsv" else "csv"
        if quoting not in ("csv", "none"):
            raise InputError(f"{self.name}: unknown quoting {quoting!r}; use csv or none")
        self.quoting = quoting
        try:
            if not codecs.lookup(encoding)._is_text_encoding:
                raise LookupError(encoding)
        except (LookupError, TypeError):
            raise InputError(f"{self.name}: unknown text encoding {encoding!r} "
                             "(for example utf-8, latin-1, utf-16)") from None
        self.encoding = encoding
        self._lines = self._decoded_lines()
        if fmt == "auto" and self.path == "-" and text_column:
            self.format = self._sniff_stdin(text_column)
        self._first_record: tuple[int, dict] | None = None
        self._csv = None
        self._json_line = 0
        self.columns = self._read_header()

    # === Lines ===
    def _open_binary(self) -> IO[bytes]:
        if self.path == "-":
            return _stdin_binary()
        try:
            handle = open(self.path, "rb")
        except FileNotFoundError:
            raise InputError(f"{self.name}: no such file") from None
        except IsADirectoryError:
            raise InputError(f"{self.name}: is a directory, expected a file") from None
        except OSError as error:
            raise InputError(f"{self.name}: cannot open ({error.strerror})") from None
        self._raw = handle  # the file on disk: its position is the progress bar's (compressed bytes for .gz)
        try:
            info = os.fstat(handle.fileno())
            self._size = info.st_size if stat.S_ISREG(info.st_mode) else None
        except OSError:
            self._size = None
        if self.path.lower().endswith(".gz"):
            return gzip.GzipFile(fileobj=handle)
        return handle

    @property
    def size(self) -> int | None:
        """Bytes of the input file on disk (compressed for .gz); None for stdin and non-files."""
        return getattr(self, "_size", None)

    def position(self) -> int | None:
        """Bytes of the input file read so far (compressed for .gz); None when unknown."""
        raw = getattr(self, "_raw", None)
        try:
            return raw.tell() if raw is not None and not raw.closed else self.size
        except (OSError, ValueError):
            return None

    def _decoded_lines(self) -> Iterator[str]:
        """Decode line by line so an undecodable byte is reported with its exact line."""
        binary = self._open_binary()
        if "\n".encode(self.encoding) != b"\n":  # UTF-16/32: a 0x0a byte is not a line end; decode, then split
            yield from self._decoded_wide_lines(binary)
            return
        line_number = 0
        try:
            for line_number, raw in enumerate(binary, 1):
                try:
                    text = raw.decode(self.encoding)
                except UnicodeDecodeError as error:
                    raise InputError(
                        f"{self.name}: line {line_number}: byte 0x{raw[error.start]:02x} at column {error.start + 1} "
                        f"is not valid {self.encoding}; pass --encoding (for example latin-1)"
                    ) from None
                if line_number == 1:
                    text = text.removeprefix("\ufeff")
                yield text
        except (gzip.BadGzipFile, EOFError, zlib.error) as error:
            raise InputError(f"{self.name}: line {line_number + 1}: corrupt or truncated gzip data ({error})") from None
        finally:
            if binary is not sys.stdin.buffer:
                binary.close()

    def _decoded_wide_lines(self, binary: IO[bytes]) -> Iterator[str]:
        text = io.TextIOWrapper(binary, encoding=self.encoding, newline="\n")
        line_number = 0
        try:
            while True:
                try:
                    line = text.readline()
                except UnicodeDecodeError as error:
                    raise InputError(
                        f"{self.name}: line {line_number + 1}: not valid {self.encoding} "
                        f"({error.reason}); pass --encoding"
                    ) from None
                if not line:
                    return
                line_number += 1
                yield line.removeprefix("\ufeff") if line_number == 1 else line
        except (gzip.BadGzipFile, EOFError, zlib.error) as error:
            raise InputError(f"{self.name}: line {line_number + 1}: corrupt or truncated gzip data ({error})") from None
        finally:
            text.detach()
            if binary is not sys.stdin.buffer:
                binary.close()

    def _sniff_stdin(self, text_column: str) -> str:
        """jsonl, csv or tsv when stdin's first line is a JSON object or a header naming text_column; else lines."""
        first = next(self._lines, None)
        if first is None:
            return "csv"  # reported as an empty input by the header reader
        self._lines = itertools.chain([first], self._lines)
        stripped = first.strip().removeprefix("\ufeff")
        if stripped.startswith("{"):
            return "jsonl"
        for fmt, delimiter in (("tsv", "\t"), ("csv", ",")):
            try:
                fields = _next_row(csv.reader([stripped], delimiter=delimiter)) or []
            except csv.Error:
                continue
            if len(fields) > 1 and text_column in (f.strip() for f in fields):
                return fmt
        return "csv" if stripped == text_column else "lines"

    # === Header ===
    def _read_header(self) -> list[str]:
        if self.format == "lines":  # plain text: one record per line, in a column named "text"
            return [self.text_column or "text"]
        if self.format == "jsonl":
            first = self._next_json(expect_data=True)
            self._first_record = first
            return list(first[1])
        dialect = {"delimiter": "\t" if self.format == "tsv" else ","}
        if self.quoting == "none":
            dialect["quoting"] = csv.QUOTE_NONE
        else:
            dialect["strict"] = True
        self._csv = csv.reader(self._lines, **dialect)
        try:
            header = _next_row(self._csv)
        except csv.Error as error:
            raise InputError(f"{self.name}: line 1: malformed header ({error})") from None
        if header is None:
            raise InputError(f"{self.name}: file is empty; expected a header row naming the columns")
        if self.text_column and len(header) == 1 and header[0].strip() != self.text_column:
            # one column and line 1 is not its name: line 1 is the first text (the one-column rule)
            self.headerless, self._header_row = True, header
            return [self.text_column]
        header = [column.strip() for column in header]
        duplicates = sorted({c for c in header if header.count(c) > 1})
        if duplicates:
            raise InputError(f"{self.name}: line 1: duplicate column name(s) {', '.join(duplicates)}")
        return header

    def require(self, column: str, what: str = "column") -> None:
        if column not in self.columns:
            raise InputError(
                f"{self.name}: no {what} {column!r}; the columns are: {', '.join(map(repr, self.columns))}"
            )

    # === Records ===
    def _next_json(self, expect_data: bool = False) -> tuple[int, dict] | None:
        for line in self._lines:
            self._json_line += 1
            if not line.strip():
                continue
            try:
                record = json.loads(line)
                if "\\u" in line:  # an escape may spell a lone surrogate, which no output encoding can write
                    json.dumps(record, ensure_ascii=False).encode("utf-8")
            except json.JSONDecodeError as error:
                raise InputError(f"{self.name}: line {self._json_line}: invalid JSON ({error.msg})") from None
            except RecursionError:
                raise InputError(f"{self.name}: line {self._json_line}: invalid JSON (nested too deeply)") from None
            except UnicodeEncodeError as error:
                raise InputError(
                    f"{self.name}: line {self._json_line}: invalid text: a lone surrogate "
                    f"{error.object[error.start]!r} is not a character (check the \\u escapes)"
                ) from None
            except ValueError as error:  # e.g. an integer of more than 4,300 digits
                raise InputError(f"{self.name}: line {self._json_line}: invalid JSON "
                                 f"({str(error).split(';')[0]})") from None
            if not isinstance(record, dict):
                raise InputError(f"{self.name}: line {self._json_line}: expected a JSON object, "
                                 f"found {type(record).__name__}")
            return self._json_line, record
        if expect_data:
            raise InputError(f"{self.name}: file is empty; expected one JSON object per line")
        return None

    def records(self) -> Iterator[tuple[int, dict]]:
        """(line number, record) for every data row, in file order. Fails on the first bad row."""
        count = 0
        if self.format == "lines":
            for line in self._lines:
                for text in _line_texts(line):
                    count += 1
                    yield count, {self.columns[0]: text}
        elif self.format == "jsonl":
            record = self._first_record
            while record is not None:
                count += 1
                yield record
                record = self._next_json()
        else:
            width = len(self.columns)
            if self._header_row is not None:
                count += 1
                yield 1, dict(zip(self.columns, self._header_row))
            while True:
                try:
                    row = _next_row(self._csv)
                except csv.Error as error:
                    raise InputError(
                        f"{self.name}: line {self._csv.line_num}: malformed {self.format.upper()} ({error}); "
                        "check the quoting of that row"
                    ) from None
                if row is None:
                    break
                if not row:  # a blank line: in a one-column file, an empty text (scored, never dropped)
                    if width != 1:
                        continue
                    row = [""]
                if len(row) != width:
                    raise InputError(
                        f"{self.name}: line {self._csv.line_num}: expected {width} fields, found {len(row)}; "
                        "check the delimiter and quoting of that row"
                    )
                count += 1
                yield self._csv.line_num, dict(zip(self.columns, row))
        if count == 0:
            raise InputError(f"{self.name}: no data rows" + ("" if self.format == "lines" else " (only a header)"))


def _line_texts(line: str) -> list[str]:
    """The texts of one raw line of a text-lines file: LF, CRLF and a lone CR (old Mac files) all end a
    line, so 'a\rb\r\n' is two texts."""
    return line.removesuffix("\n").removesuffix("\r").split("\r")

