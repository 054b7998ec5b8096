"""Records out, in every output format, for attn-score and attn-translate rows.

CSV/TSV/JSONL/txt here; Parquet in runtime.io.parquet. Every writer has the same three methods:
`write(row_id, ...)` one row, in input order; `close()` finishes the file (Parquet's footer);
`abandon()` drops it when the output failed. `score_writer` and `translation_writer` pick the one
for a format. The Ray engine's CSV cells are formatted by the same functions (`score_cells`,
`translation_cells`), so both engines write the same text for the same value.
"""

from __future__ import annotations

import csv
import json

from runtime.io.columns import KeptColumns, explanation_records, plain
from runtime.io.diagnostics import DIAGNOSTICS, csv_cells
from runtime.screening import FIELDS as SCREENING_FIELDS


def table_writer(handle, fmt: str):
    """A csv.writer for CSV or TSV output (TSV: quoted like CSV where a field holds a tab, quote or newline)."""
    if fmt not in ("csv", "tsv"):
        return None
    return csv.writer(handle, lineterminator="\n", delimiter="\t" if fmt == "tsv" else ",")


def probability_cell(probability: float | None) -> str:
    return "" if probability is None else f"{probability:.6f}"


def explanation_cell(explanation) -> str:
    """The CSV cell of an explanation ((token, weight) pairs): JSON [{"token", "weight" (4 places)}]."""
    return json.dumps(explanation_records(explanation), ensure_ascii=False)


def score_cell(score: float) -> str:
    return f"{score:.4f}"


def score_header(explain: bool) -> list[str]:
    """attn-score's result columns, after id and the kept columns."""
    return ["probability", "label"] + (["explanation"] if explain else []) + list(SCREENING_FIELDS)


def score_row_cells(record: dict, explain: bool) -> list[str]:
    """The CSV cells of one scored row (a `Classifier.record`: probability, label[, explanation],
    token_count, oov_share, truncated_tokens, status), as both engines write them."""
    cells = [probability_cell(record["probability"]), record["label"]]
    if explain:
        cells.append(explanation_cell(record["explanation"]))
    share = record["oov_share"]
    return cells + [str(record["token_count"]), "" if share is None else f"{share:.4f}",
                    str(record["truncated_tokens"]), record["status"]]


TRANSLATION_HEADER = ("source", "translation", "score", *DIAGNOSTICS)  # after id and the kept columns


def translation_row_cells(source: str, result, diagnostics: dict) -> list[str]:
    """The CSV cells of one translated row, as both engines write them."""
    return [source, result.text, score_cell(result.score), *csv_cells(diagnostics)]


class _Writer:
    def close(self) -> None:
        """Nothing to finish (a Parquet writer writes its footer here)."""

    def abandon(self) -> None:
        """Nothing to drop (a Parquet writer drops its footer here)."""


class ScoreWriter(_Writer):
    """CSV, TSV or JSONL rows: id, [kept input columns,] probability, label[, explanation], token_count,
    oov_share, truncated_tokens, status (runtime/screening.py). The JSONL id keeps its JSON type."""

    def __init__(self, handle, fmt: str, explain: bool, kept: KeptColumns | None = None):
        self.handle, self.fmt, self.explain, self.kept = handle, fmt, explain, kept
        self.csv = table_writer(handle, fmt)
        self.started = False

    def write(self, row_id, probability: float | None, label: str, explanation, diagnostics) -> None:
        if self.csv and not self.started:  # header with the first row: a failure before it prints nothing
            self.csv.writerow(["id"] + (self.kept.output_names if self.kept else []) + score_header(self.explain))
        self.started = True
        values = self.kept.pop() if self.kept else []
        if self.csv:
            record = {"probability": probability, "label": label, "explanation": explanation, **diagnostics.record()}
            self.csv.writerow([KeptColumns.cell(row_id), *map(KeptColumns.cell, values),
                               *score_row_cells(record, self.explain)])
            return
        record = {
            "id": row_id,
            **dict(zip(self.kept.output_names if self.kept else [], values)),
            "probability": None if probability is None else round(float(probability), 6),
            "label": label,
        }
        if self.explain:
            record["explanation"] = explanation_records(explanation)
        self.handle.write(json.dumps(record | diagnostics.record(digits=4), ensure_ascii=False, default=plain) + "\n")


class TranslationWriter(_Writer):
    """txt (one translation per line), or CSV, TSV or JSONL rows: id, [kept input columns,] source,
    translation, score and the DIAGNOSTICS (runtime.io.diagnostics). The JSONL id keeps its JSON type."""

    def __init__(self, handle, fmt: str, kept: KeptColumns | None = None):
        self.handle, self.fmt, self.kept = handle, fmt, kept
        self.names = kept.output_names if kept else []
        self.csv = table_writer(handle, fmt)
        self.started = False

    def write(self, row_id, source: str, result, diagnostics: dict) -> None:
        values = self.kept.pop() if self.kept else []
        if self.csv is not None:
            if not self.started:
                self.csv.writerow(["id", *self.names, *TRANSLATION_HEADER])
            self.csv.writerow([KeptColumns.cell(row_id), *map(KeptColumns.cell, values),
                               *translation_row_cells(source, result, diagnostics)])
        elif self.fmt == "jsonl":
            record = {
                "id": row_id,
                **dict(zip(self.names, values)),
                "source": source,
                "translation": result.text,
                "score": round(result.score, 4),
                **diagnostics,
            }
            self.handle.write(json.dumps(record, ensure_ascii=False, default=plain) + "\n")
        else:
            self.handle.write(result.text + "\n")
        self.started = True


def score_writer(handle, fmt: str, explain: bool, kept: KeptColumns | None = None, kept_types: dict | None = None):
    """The writer of attn-score rows in `fmt` into the text `handle` (Parquet: into its binary buffer)."""
    if fmt == "parquet":
        from runtime.io.parquet import ParquetOutput

        return ParquetOutput(handle.buffer, explain, kept, kept_types)
    return ScoreWriter(handle, fmt, explain, kept)


def translation_writer(handle, fmt: str, kept: KeptColumns | None = None, kept_types: dict | None = None):
    """The writer of attn-translate rows in `fmt` into the text `handle` (Parquet: into its binary buffer)."""
    if fmt == "parquet":
        from runtime.io.parquet import TranslationParquet

        return TranslationParquet(handle.buffer, kept, kept_types)
    return TranslationWriter(handle, fmt, kept)
