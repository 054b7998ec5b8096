"""The one table of file suffixes: what a name says about its format, for inputs and outputs.

Inputs: .csv, .tsv/.tab, .jsonl/.ndjson/.json, .txt (one text per line) and .parquet/.pq, each
optionally .gz (not Parquet). Outputs: what -o's suffix names (a .gz after it aside).
"""

from __future__ import annotations

import os

from runtime.errors import OutputError

# suffix -> format, for input and output alike ("lines" is the input name of a .txt file)
SUFFIX_FORMATS = {
    ".csv": "csv",
    ".tsv": "tsv",
    ".tab": "tsv",
    ".jsonl": "jsonl",
    ".ndjson": "jsonl",
    ".json": "jsonl",
    ".txt": "lines",
    ".parquet": "parquet",
    ".pq": "parquet",
}
DATA_SUFFIXES = tuple(SUFFIX_FORMATS)  # what a folder of inputs is searched for (--engine ray)
TABLE_FORMATS = ("csv", "tsv", "jsonl", "lines")  # read by runtime.io.tables
SCORE_FORMATS = ("csv", "tsv", "jsonl", "parquet")  # written by attn-score
TRANSLATE_FORMATS = ("txt", "csv", "tsv", "jsonl", "parquet")  # written by attn-translate


def format_of(path: str) -> str | None:
    """The format a file name names (a trailing .gz ignored), or None."""
    name = str(path).lower().removesuffix(".gz")
    return SUFFIX_FORMATS.get(os.path.splitext(name)[1])


def is_parquet(path: str) -> bool:
    return format_of(path) == "parquet" and not str(path).lower().endswith(".gz")


def is_data_file(name: str) -> bool:
    """A name an input folder's listing keeps: a data suffix (optionally .gz), not hidden, not a marker."""
    return not name.startswith((".", "_")) and format_of(name) is not None


def detect_format(path: str) -> str:
    """csv / tsv / jsonl / lines of a table file from its name; stdin and unknown -> csv."""
    found = format_of(path)
    return found if found in TABLE_FORMATS else "csv"


def output_format(output: str | None, explicit: str | None, offered: tuple[str, ...], default: str) -> str:
    """The output format: `explicit` (--format), else what the output's suffix names, else `default`.
    A format the suffix contradicts is an OutputError, and so is a gzipped Parquet file (Parquet
    compresses itself). An output named .json is not taken for JSONL (it names no format here)."""
    if output in (None, "-"):
        return explicit or default
    name = str(output).lower()
    implied = None if name.removesuffix(".gz").endswith(".json") else format_of(output)
    implied = "txt" if implied == "lines" else implied
    implied = implied if implied in offered else None  # attn-score -o scores.txt: a CSV, as before
    if explicit and implied and explicit != implied:
        raise OutputError(
            f"--format {explicit} contradicts -o {output} (a {implied} file name); drop --format or rename the output"
        )
    chosen = explicit or implied or default
    if chosen == "parquet" and name.endswith(".gz"):
        raise OutputError(f"-o {output}: Parquet compresses itself (zstd); drop the .gz")
    return chosen
