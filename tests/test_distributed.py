"""The Ray engine on a real local Ray instance (2 CPUs, started once per session): results equal to
the plain runtime row for row, many files in, partitioned output with a completion marker, and a bad
file failing the whole job with one line and nothing under the final name. No mocks of Ray."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner
from ray_files import no_partial_folders, read_output, write_csv

import runtime
from runtime.cli import main as score_cli
from runtime.cli import translate_main as translate_cli
from runtime.io.columns import KeptColumns

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def imdb():
    return runtime.load("imdb")


def test_plain_runtime_and_cli_do_not_import_ray():
    code = "import sys, runtime, runtime.cli; print(sorted(m for m in ('ray', 'pyarrow') if m in sys.modules))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                         env={**os.environ, "PYTHONPATH": str(REPO)}).stdout
    assert out.strip() == "[]"


def test_engine_without_ray_is_one_line_naming_the_extra(tmp_path):
    code = ("import sys; sys.modules['ray'] = None; from runtime.cli import main; "
            f"main(['--engine', 'ray', {str(REPO / 'examples' / 'reviews.csv')!r}, '-o', {str(tmp_path / 'out')!r}])")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          env={**os.environ, "PYTHONPATH": str(REPO)})
    assert done.returncode == 1
    assert done.stderr.strip() == "Error: the Ray engine needs Ray Data and pyarrow: pip install 'attn-onnx[ray]'"


def test_score_dataset_equals_classifier(ray_local, reviews, imdb):
    from runtime.engines.ray import score_dataset

    texts = reviews[:200] + ["", "Great.", "😡😡😡", "정말 최고의 영화", "qqqzzz xxyyq", " ".join([reviews[0]] * 40)]
    ds = ray_local.data.from_items([{"key": 1000 + i, "text": text} for i, text in enumerate(texts)])
    rows = score_dataset(ds, "imdb", id_column="key", keep_columns=("key",), explain=3, workers=2).take_all()
    assert len(rows) == len(texts)
    by_key = {row["key"]: row for row in rows}
    assert sorted(by_key) == list(range(1000, 1000 + len(texts)))  # every row once
    probabilities, explanations = imdb.score_and_explain(texts, 3)
    records = imdb.score(texts)  # the plain diagnostics: the same record function
    assert {r["status"] for r in records} == {"ok", "empty", "other-script", "unknown"}
    assert max(r["truncated_tokens"] for r in records) > 0
    for i, (probability, explanation, plain) in enumerate(zip(probabilities, explanations, records)):
        row = by_key[1000 + i]
        assert row["id"] == str(1000 + i)
        for field in ("label", "token_count", "truncated_tokens", "status"):
            assert row[field] == plain[field], (i, field)
        assert (row["oov_share"] is None) == (plain["oov_share"] is None)
        assert row["oov_share"] is None or abs(row["oov_share"] - plain["oov_share"]) <= 1e-6  # float32
        if plain["status"] != "ok":
            assert row["probability"] is None and row["label"] == "unknown"
        else:
            assert abs(row["probability"] - float(probability)) <= 1e-6
            assert row["label"] == imdb.labels[int(probability >= 0.5)]
        # Parquet's explanation on both engines: {token, weight} with the float32 weight (tests/test_engine_spec.py)
        assert row["explanation"] == [{"token": token, "weight": pytest.approx(float(weight), rel=1e-6)}
                                      for token, weight in explanation]


def test_translate_dataset_equals_translator(ray_local):
    from runtime.engines.ray import translate_dataset

    sentences = (REPO / "examples" / "sentences.txt").read_text(encoding="utf-8").splitlines()[:10] + [""]
    ds = ray_local.data.from_items([{"n": i, "text": s} for i, s in enumerate(sentences)])
    rows = sorted(translate_dataset(ds, "spa-eng", keep_columns=("n",), beam_size=2, workers=1).take_all(),
                  key=lambda r: r["n"])
    expected = runtime.load("spa-eng").translate(sentences, beam_size=2)
    assert [r["source"] for r in rows] == sentences
    assert [r["translation"] for r in rows] == [e.text for e in expected]
    assert max(abs(r["score"] - e.score) for r, e in zip(rows, expected)) <= 1e-6


def test_score_dataset_refuses_a_translation_bundle_before_any_job(ray_local):
    from runtime.engines.ray import score_dataset

    with pytest.raises(runtime.BundleError, match="translation"):
        score_dataset(ray_local.data.from_items([{"text": "x"}]), "spa-eng")


@pytest.fixture(scope="module")
def many_files(tmp_path_factory, reviews):
    """Six files of every input kind (CSV, TSV.gz, JSONL, text lines, Parquet, CSV.gz in a subfolder),
    with and without an id column: 120 rows."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    root = tmp_path_factory.mktemp("many")
    data, extra = root / "data", root / "extra"
    (data / "sub").mkdir(parents=True)
    extra.mkdir()
    texts = iter(reviews)
    take = lambda n: [next(texts) for _ in range(n)]  # noqa: E731
    write_csv(data / "a.csv", ["id", "text"], [[f"a{i}", t] for i, t in enumerate(take(30))])
    write_csv(data / "b.tsv.gz", ["text"],
              [[t.replace("\t", " ").replace("\n", " ").replace("\\", "")] for t in take(25)], "\t")
    with open(data / "c.jsonl", "w", encoding="utf-8") as handle:
        for i, t in enumerate(take(20)):
            handle.write(json.dumps({"id": 500 + i, "text": t}) + "\n")
    (data / "d.txt").write_text("".join(t.replace("\n", " ") + "\n" for t in take(10)), encoding="utf-8")
    write_csv(data / "sub" / "f.csv.gz", ["text", "stars"], [[t, 5] for t in take(20)])
    pq.write_table(pa.table({"id": [f"p{i}" for i in range(15)], "text": take(15)}), extra / "e.parquet")
    (data / "_SUCCESS").write_text("")  # markers and hidden files in an input folder are not data
    return root


def _plain_scores(path: Path) -> dict[str, float]:
    """id (as text, as the Ray engine's Parquet holds it) -> probability as the plain attn-score prints it
    (its JSONL keeps a number id a number)."""
    result = CliRunner().invoke(score_cli, [str(path), "--format", "jsonl"])
    assert result.exit_code == 0, result.output
    return {KeptColumns.cell(r["id"]): r["probability"] for r in map(json.loads, result.stdout.splitlines())}


def test_cli_many_files_equal_to_plain_attn_score(ray_local, many_files, tmp_path, monkeypatch):
    monkeypatch.chdir(many_files)  # names as a user types them: relative
    out = tmp_path / "scores"
    result = CliRunner().invoke(score_cli,
                                ["--engine", "ray", "--workers", "2", "data", "extra/*.parquet", "-o", str(out)])
    assert result.exit_code == 0, result.output
    assert "scored 120 rows of 6 files" in result.stderr
    marker = json.loads((out / "_SUCCESS").read_text())
    assert marker["rows"] == 120 and marker["files"] == 6
    from runtime.engines.ray import score_statuses
    from runtime.screening import status_summary

    statuses = score_statuses(out, "parquet")
    assert sum(statuses.values()) == 120 and status_summary(statuses) in result.stderr
    assert no_partial_folders(tmp_path)
    rows = read_output(out)
    assert len(rows) == 120
    assert sorted(rows[0]) == sorted(["file", "id", "label", "probability", "row", "token_count", "oov_share",
                                      "truncated_tokens", "status"])
    by_file: dict[str, list[dict]] = {}
    for row in rows:
        by_file.setdefault(row["file"], []).append(row)
    assert sorted(by_file) == ["data/a.csv", "data/b.tsv.gz", "data/c.jsonl", "data/d.txt",
                               "data/sub/f.csv.gz", "extra/e.parquet"]
    assert [r["row"] for r in rows[:30]] == list(range(1, 31)) and rows[0]["file"] == "data/a.csv"  # input order kept
    for name in ["data/a.csv", "data/b.tsv.gz", "data/c.jsonl", "data/d.txt", "data/sub/f.csv.gz"]:
        plain = _plain_scores(Path(name))
        got = by_file[name]
        assert len(got) == len(plain)
        has_ids = name in ("data/a.csv", "data/c.jsonl")
        for row in got:
            # the id column's value; without one "<file>:<row>", where plain attn-score gives the row number
            plain_id = row["id"] if has_ids else str(row["row"])
            assert has_ids or row["id"] == f"{name}:{row['row']}"
            assert abs(row["probability"] - plain[plain_id]) <= 1e-6  # plain rounds to 6 decimals
    parquet_texts = [r for r in rows if r["file"] == "extra/e.parquet"]
    assert [r["id"] for r in parquet_texts] == [f"p{i}" for i in range(15)]


def test_cli_translate_many_files_to_csv(ray_local, tmp_path):
    from test_translation_copy import RUN_ON, WEDDING

    from runtime.io.diagnostics import DIAGNOSTICS, LIST_DIAGNOSTICS, row_diagnostics

    sentences = (REPO / "examples" / "sentences.txt").read_text(encoding="utf-8").splitlines()[:6]
    sentences[1:1] = [WEDDING, RUN_ON]  # a number to copy, a sentence over the limit: one.txt lines 2 and 3
    (tmp_path / "one.txt").write_text("\n".join(sentences[:5]) + "\n", encoding="utf-8")
    write_csv(tmp_path / "two.csv", ["id", "text"], [[f"s{i}", s] for i, s in enumerate(sentences[5:])])
    out = tmp_path / "translations"
    result = CliRunner().invoke(translate_cli, ["--engine", "ray", "--workers", "1",
                                                "--beam-size", "2", "--format", "csv",
                                                str(tmp_path / "one.txt"), str(tmp_path / "two.csv"), "-o", str(out)])
    assert result.exit_code == 0, result.output
    assert (out / "_SUCCESS").is_file()
    rows = read_output(out)
    expected = runtime.load("spa-eng").translate(sentences, beam_size=2)
    assert [r["source"] for r in rows] == sentences
    assert [r["translation"] for r in rows] == [e.text for e in expected]
    assert "2015" in rows[1]["translation"]
    for row, want in zip(rows, expected):  # the plain engine's diagnostics, row for row
        assert {name: json.loads(row[name]) if name in LIST_DIAGNOSTICS else row[name] for name in DIAGNOSTICS} \
            == row_diagnostics(want)
    assert rows[2]["windowed"] is True and rows[2]["segments"] == 2
    assert f"translated in windows of words (see column 'windowed'): row {tmp_path / 'one.txt'}:3" in result.stderr
    assert "hold <oov>" in result.stderr and f"{tmp_path / 'one.txt'}:2" in result.stderr
    assert [r["id"] for r in rows[5:]] == ["s0", "s1", "s2"]
    assert rows[0]["id"] == f"{tmp_path / 'one.txt'}:1"


def _options_of(command) -> set[str]:
    return {param.name for param in command.params if param.expose_value}  # not --version / --help: they exit at once


@pytest.mark.parametrize("command, job", [(score_cli, "score_files"), (translate_cli, "translate_files")])
def test_every_option_is_honoured_by_ray_or_refused(command, job, tmp_path):
    """Each option of the command is passed to the Ray job (a keyword of score_files / translate_files) or
    refused with --engine ray in one line: a new option cannot be dropped silently."""
    import inspect

    from runtime import cli
    from runtime.engines import ray as distributed

    keywords = set(inspect.signature(getattr(distributed, job)).parameters)
    for name in _options_of(command):
        if name in cli.LOCAL_ONLY or name in cli.NOT_FOR_THE_JOB:
            continue
        assert cli.RAY_KEYWORDS.get(name, name) in keywords, (
            f"--engine ray drops {name!r}: pass it to {job} or refuse it")
    (tmp_path / "in.csv").write_text("text\ngood\n")
    for param in command.params:
        if param.name not in cli.LOCAL_ONLY:
            continue
        args = [param.opts[0]] + ([] if getattr(param, "is_flag", False) else ["3"])
        result = CliRunner().invoke(command,
                                    ["--engine", "ray", str(tmp_path / "in.csv"), "-o", str(tmp_path / "o"), *args])
        assert result.exit_code == 2, (args, result.output)
        assert f"{param.opts[0]}: the local engine's option" in result.stderr, result.stderr
    assert not (tmp_path / "o").exists()


