"""Files in and out of the Ray engine's tests (test_distributed.py, test_distributed_failures.py)."""

from __future__ import annotations

import csv
import gzip
from pathlib import Path


def write_csv(path: Path, header, rows, delimiter=","):
    opener = gzip.open if path.name.endswith(".gz") else open
    with opener(path, "wt", encoding="utf-8", newline="") as handle:
        writer = csv.writer(handle, delimiter=delimiter, lineterminator="\n",
                            quoting=csv.QUOTE_NONE if delimiter == "\t" else csv.QUOTE_MINIMAL, escapechar="\\")
        writer.writerow(header)
        writer.writerows(rows)


def read_output(folder: Path) -> list[dict]:
    import pyarrow as pa
    import pyarrow.csv as pacsv
    import pyarrow.parquet as pq

    parts = sorted(p for p in folder.iterdir() if not p.name.startswith(("_", ".")))
    assert parts, f"no partitions in {folder}"
    if parts[0].suffix == ".csv":
        convert = pacsv.ConvertOptions(column_types={"id": pa.string(), "file": pa.string()})
        tables = [pacsv.read_csv(p, parse_options=pacsv.ParseOptions(newlines_in_values=True), convert_options=convert)
                  for p in parts]
    else:
        tables = [pq.read_table(p) for p in parts]
    return pa.concat_tables(tables).to_pylist()


def no_partial_folders(parent: Path):
    return not [p for p in parent.iterdir() if ".partial-" in p.name]
