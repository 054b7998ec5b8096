"""Rows in, records out, for every engine (the local one and Ray). Knows no model.

tables: CSV/TSV/JSONL/text lines (.gz, stdin) with line-exact errors; parquet: Parquet in and out
(pyarrow, imported only there); rows: the text and id rules (`open_input`, `read_rows`, `row_id`);
columns: the output columns and --keep-columns; writers: CSV/TSV/JSONL/txt records; formats: the
one suffix table; atomic: the output file that appears only complete; diagnostics: per-sentence
translation diagnostics and their stderr notes.
"""

from runtime.errors import InputError, OutputError
from runtime.io.atomic import OutputFile
from runtime.io.tables import TableReader

__all__ = ["InputError", "OutputError", "OutputFile", "TableReader"]
