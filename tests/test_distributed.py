"""The Ray engine on a real local Ray instance (2 CPUs, started once per session): results equal to
the plain runtime row for row, many files in, partitioned output with a completion marker, and a bad
file failing the whole job with one line and nothing under the final name. No mocks of Ray."""

from __future__ import annotations

import csv
import gzip
import io
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner

import runtime
from runtime.cli import main as score_cli
from runtime.cli import translate_main as translate_cli
from runtime.io.columns import KeptColumns, explanation_records

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def reviews(imdb_test):
    """240 IMDB test reviews of mixed length and label (the file is sorted by label)."""
    picked = imdb_test.take(list(range(0, 25_000, 25_000 // 240))[:240])
    return [str(text) for text in picked.texts]


@pytest.fixture(scope="module")
def imdb():
    return runtime.load("imdb")


def _write_csv(path: Path, header, rows, delimiter=","):
    opener = gzip.open if path.name.endswith(".gz") else open
    with opener(path, "wt", encoding="utf-8", newline="") as handle:
        writer = csv.writer(handle, delimiter=delimiter, lineterminator="\n",
                            quoting=csv.QUOTE_NONE if delimiter == "\t" else csv.QUOTE_MINIMAL, escapechar="\\")
        writer.writerow(header)
        writer.writerows(rows)


def _read_output(folder: Path) -> list[dict]:
    import pyarrow as pa
    import pyarrow.csv as pacsv
    import pyarrow.parquet as pq

    parts = sorted(p for p in folder.iterdir() if not p.name.startswith(("_", ".")))
    assert parts, f"no partitions in {folder}"
    if parts[0].suffix == ".csv":
        convert = pacsv.ConvertOptions(column_types={"id": pa.string(), "file": pa.string()})
        tables = [pacsv.read_csv(p, parse_options=pacsv.ParseOptions(newlines_in_values=True), convert_options=convert) for p in parts]
    else:
        tables = [pq.read_table(p) for p in parts]
    return pa.concat_tables(tables).to_pylist()


def _no_partial_folders(parent: Path):
    return not [p for p in parent.iterdir() if ".partial-" in p.name]


def test_plain_runtime_and_cli_do_not_import_ray():
    code = "import sys, runtime, runtime.cli; print(sorted(m for m in ('ray', 'pyarrow') if m in sys.modules))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                         env={**os.environ, "PYTHONPATH": str(REPO)}).stdout
    assert out.strip() == "[]"


def test_engine_without_ray_is_one_line_naming_the_extra(tmp_path):
    code = ("import sys; sys.modules['ray'] = None; from runtime.cli import main; "
            f"main(['--engine', 'ray', {str(REPO / 'examples' / 'reviews.csv')!r}, '-o', {str(tmp_path / 'out')!r}])")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env={**os.environ, "PYTHONPATH": str(REPO)})
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
        assert row["explanation"] == json.dumps(explanation_records(explanation), ensure_ascii=False)


def test_translate_dataset_equals_translator(ray_local):
    from runtime.engines.ray import translate_dataset

    sentences = (REPO / "examples" / "sentences.txt").read_text(encoding="utf-8").splitlines()[:10] + [""]
    ds = ray_local.data.from_items([{"n": i, "text": s} for i, s in enumerate(sentences)])
    rows = sorted(translate_dataset(ds, "spa-eng", keep_columns=("n",), beam_size=2, workers=1).take_all(), key=lambda r: r["n"])
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
    _write_csv(data / "a.csv", ["id", "text"], [[f"a{i}", t] for i, t in enumerate(take(30))])
    _write_csv(data / "b.tsv.gz", ["text"], [[t.replace("\t", " ").replace("\n", " ").replace("\\", "")] for t in take(25)], "\t")
    with open(data / "c.jsonl", "w", encoding="utf-8") as handle:
        for i, t in enumerate(take(20)):
            handle.write(json.dumps({"id": 500 + i, "text": t}) + "\n")
    (data / "d.txt").write_text("".join(t.replace("\n", " ") + "\n" for t in take(10)), encoding="utf-8")
    _write_csv(data / "sub" / "f.csv.gz", ["text", "stars"], [[t, 5] for t in take(20)])
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
    result = CliRunner().invoke(score_cli, ["--engine", "ray", "--workers", "2", "data", "extra/*.parquet", "-o", str(out)])
    assert result.exit_code == 0, result.output
    assert "scored 120 rows of 6 files" in result.stderr
    marker = json.loads((out / "_SUCCESS").read_text())
    assert marker["rows"] == 120 and marker["files"] == 6
    from runtime.engines.ray import score_statuses
    from runtime.screening import status_summary

    statuses = score_statuses(out, "parquet")
    assert sum(statuses.values()) == 120 and status_summary(statuses) in result.stderr
    assert _no_partial_folders(tmp_path)
    rows = _read_output(out)
    assert len(rows) == 120
    assert sorted(rows[0]) == sorted(["file", "id", "label", "probability", "row", "token_count", "oov_share",
                                      "truncated_tokens", "status"])
    by_file: dict[str, list[dict]] = {}
    for row in rows:
        by_file.setdefault(row["file"], []).append(row)
    assert sorted(by_file) == ["data/a.csv", "data/b.tsv.gz", "data/c.jsonl", "data/d.txt", "data/sub/f.csv.gz", "extra/e.parquet"]
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
    _write_csv(tmp_path / "two.csv", ["id", "text"], [[f"s{i}", s] for i, s in enumerate(sentences[5:])])
    out = tmp_path / "translations"
    result = CliRunner().invoke(translate_cli, ["--engine", "ray", "--workers", "1", "--beam-size", "2", "--format", "csv",
                                                str(tmp_path / "one.txt"), str(tmp_path / "two.csv"), "-o", str(out)])
    assert result.exit_code == 0, result.output
    assert (out / "_SUCCESS").is_file()
    rows = _read_output(out)
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


def _ten_files(folder: Path, reviews) -> list[Path]:
    folder.mkdir()
    paths = []
    for n in range(10):
        path = folder / f"part{n}.csv"
        _write_csv(path, ["id", "text"], [[f"{n}-{i}", t] for i, t in enumerate(reviews[n * 12:(n + 1) * 12])])
        paths.append(path)
    return paths


def _break(kind: str, folder: Path, reviews) -> tuple[Path, str]:
    """Replace one of the ten files by a broken one whose header still reads: (file, expected message)."""
    if kind == "undecodable":
        path = folder / "part6.csv"
        lines = path.read_bytes().split(b"\n")
        lines[8] = lines[8][:5] + b"\xff" + lines[8][5:]
        path.write_bytes(b"\n".join(lines))
        return path, r"part6\.csv: line 9: byte 0xff .* not valid utf-8"
    if kind == "corrupt-gzip":
        (folder / "part3.csv").unlink()
        path = folder / "part3.csv.gz"
        _write_csv(path, ["id", "text"], [[str(i), reviews[i % len(reviews)]] for i in range(300)])
        data = path.read_bytes()
        path.write_bytes(data[: len(data) // 2])  # truncated mid-data (~150 rows in): the header still decodes
        return path, r"part3\.csv\.gz: line \d+: corrupt or truncated gzip data"
    (folder / "part8.csv").unlink()
    path = folder / "part8.jsonl"
    records = [{"id": i, "text": reviews[i]} for i in range(10)]
    records[6] = {"id": 6, "review": reviews[6]}
    path.write_text("".join(json.dumps(r) + "\n" for r in records), encoding="utf-8")
    return path, r"part8\.jsonl: line 7: no field 'text' in this row"


@pytest.mark.parametrize("kind", ["undecodable", "corrupt-gzip", "missing-field"])
def test_cli_a_bad_file_among_ten_fails_the_job_with_one_line(kind, ray_local, reviews, tmp_path):
    folder = tmp_path / "in"
    _ten_files(folder, reviews)
    _, message = _break(kind, folder, reviews)
    out = tmp_path / "scores"
    result = CliRunner().invoke(score_cli, ["--engine", "ray", "--workers", "2", str(folder), "-o", str(out)])
    assert result.exit_code == 1, result.output
    assert len(result.stderr.strip().splitlines()) == 1, result.stderr
    import re

    assert re.search(message, result.stderr), result.stderr
    assert not out.exists()  # no marker, no partitions under the final name
    assert _no_partial_folders(tmp_path)


def test_cli_checks_columns_and_output_before_starting(ray_local, reviews, tmp_path):
    folder = tmp_path / "in"
    _ten_files(folder, reviews)
    _write_csv(folder / "part4.csv", ["id", "review"], [["1", "x"]])
    out = tmp_path / "scores"
    result = CliRunner().invoke(score_cli, ["--engine", "ray", str(folder), "-o", str(out)])
    assert result.exit_code == 1
    assert "part4.csv: no column 'text'" in result.stderr and not out.exists()
    (folder / "part4.csv").unlink()
    out.mkdir()
    result = CliRunner().invoke(score_cli, ["--engine", "ray", str(folder), "-o", str(out)])
    assert result.exit_code == 2 and "is a directory" in result.stderr and not list(out.iterdir())  # never written into
    out.rmdir()
    out.write_text("keep me")
    result = CliRunner().invoke(score_cli, ["--engine", "ray", str(folder), "-o", str(out)])
    assert result.exit_code == 1 and "already exists" in result.stderr and out.read_text() == "keep me"
    result = CliRunner().invoke(score_cli, ["--engine", "ray", str(folder / "nothing-*.csv"), "-o", str(tmp_path / "x")])
    assert result.exit_code == 1 and "no file matches" in result.stderr
    result = CliRunner().invoke(score_cli, ["--engine", "ray", "--workers", "3", str(folder), "-o", str(tmp_path / "x")])
    assert result.exit_code == 1 and "needs 3 CPUs; the Ray cluster has 2" in result.stderr
    result = CliRunner().invoke(score_cli, [str(folder / "part0.csv"), str(folder / "part1.csv")])
    assert result.exit_code == 2 and "--engine ray" in result.stderr  # the plain engine reads one INPUT


def test_cli_joins_a_running_cluster_with_address(ray_local, reviews, tmp_path):
    """A separate process joins the session's Ray with --address, as on a cluster."""
    _write_csv(tmp_path / "in.csv", ["text"], [[t] for t in reviews[:20]])
    address = ray_local.get_runtime_context().gcs_address
    out = tmp_path / "scores"
    done = subprocess.run([sys.executable, "-m", "runtime.cli", "--engine", "ray", "--address", address, "--workers", "1",
                           str(tmp_path / "in.csv"), "-o", str(out)], capture_output=True, text=True, cwd=tmp_path,
                          env={**os.environ, "PYTHONPATH": str(REPO)}, timeout=300)
    assert done.returncode == 0, done.stderr
    assert done.stderr.strip().splitlines()[-1].startswith("scored 20 rows of 1 file")
    assert len(_read_output(out)) == 20 and (out / "_SUCCESS").is_file()


# === Issue 33: the Ray engine writes what the plain command writes, or says why not, in bounded time ===
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
        assert cli.RAY_KEYWORDS.get(name, name) in keywords, f"--engine ray drops {name!r}: pass it to {job} or refuse it"
    (tmp_path / "in.csv").write_text("text\ngood\n")
    for param in command.params:
        if param.name not in cli.LOCAL_ONLY:
            continue
        args = [param.opts[0]] + ([] if getattr(param, "is_flag", False) else ["3"])
        result = CliRunner().invoke(command, ["--engine", "ray", str(tmp_path / "in.csv"), "-o", str(tmp_path / "o"), *args])
        assert result.exit_code == 2, (args, result.output)
        assert f"{param.opts[0]}: the local engine's option" in result.stderr, result.stderr
    assert not (tmp_path / "o").exists()


def _sigint_default() -> None:
    """In the child: SIGINT at its default, as at a terminal (a shell running pytest in the background ignores it)."""
    import signal

    signal.signal(signal.SIGINT, signal.SIG_DFL)


def _finish(process: subprocess.Popen, timeout: float) -> str:
    """The process's stderr once it ends; killed (and the test failed) if it runs past `timeout` seconds."""
    try:
        return process.communicate(timeout=timeout)[1]
    except subprocess.TimeoutExpired:
        process.kill()
        process.communicate()
        pytest.fail(f"still running after {timeout} s: {process.args}")


def _ray_cli(*args, cwd) -> subprocess.Popen:
    """attn-score in its own process."""
    return subprocess.Popen([sys.executable, "-m", "runtime.cli", *args], cwd=cwd, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, env={**os.environ, "PYTHONPATH": str(REPO)},
                            preexec_fn=_sigint_default)


def test_unreachable_address_fails_in_bounded_time_naming_it(tmp_path):
    """The probe itself is bounded (timed here, apart from the command's start-up on a loaded machine); the
    command says so in one line."""
    import time

    from runtime.engines.ray import EngineError, check_reachable

    started = time.monotonic()
    with pytest.raises(EngineError, match=r"^cannot reach the Ray cluster at 127\.0\.0\.1:1: "):
        check_reachable("127.0.0.1:1")
    assert time.monotonic() - started <= 15
    _write_csv(tmp_path / "in.csv", ["text"], [["good"]])
    process = _ray_cli("--engine", "ray", "--address", "127.0.0.1:1", "in.csv", "-o", "out", cwd=tmp_path)
    stderr = _finish(process, 300)
    assert process.returncode == 1, stderr
    assert stderr.strip().count("\n") == 0 and "cannot reach the Ray cluster at 127.0.0.1:1" in stderr, stderr
    assert not (tmp_path / "out").exists()


def test_parquet_text_type_is_checked_before_ray_starts(tmp_path):
    """The schema is checked on the driver before connecting: the unreachable address is never tried."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    pq.write_table(pa.table({"id": ["a"], "text": [5]}), tmp_path / "inttext.parquet")
    process = _ray_cli("--engine", "ray", "--address", "127.0.0.1:1", "inttext.parquet", "-o", "out", cwd=tmp_path)
    stderr = _finish(process, 300)  # start-up alone took 120 s at load average 150
    assert process.returncode == 1, stderr
    assert stderr.strip() == "Error: inttext.parquet: column 'text' is int64, expected text", stderr


@pytest.fixture(scope="module")
def parquet_kinds(tmp_path_factory):
    """Parquet files the plain command reads: boolean and float ids, a dictionary-encoded text column,
    one column not named text; and a CSV whose file name is not UTF-8."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    root = tmp_path_factory.mktemp("kinds")
    texts = ["a good film", "a bad film", "fine", "awful"]
    pq.write_table(pa.table({"id": [True, False, True, False], "text": texts}), root / "boolid.parquet")
    pq.write_table(pa.table({"id": [1.5, 2.0, 3.0, 4.0], "text": texts}), root / "floatid.parquet")
    pq.write_table(pa.table({"id": ["d1", "d2", "d3", "d4"], "text": pa.array(texts).dictionary_encode()}),
                   root / "dicttext.parquet")
    pq.write_table(pa.table({"review": texts}), root / "onecol.parquet")
    (root / os.fsdecode(b"bad\xffname.csv")).write_text("id,text\nx1,a good film\nx2,a bad film\n", encoding="utf-8")
    return root


def test_ray_ids_and_parquet_rules_equal_the_plain_command(ray_local, parquet_kinds, tmp_path, monkeypatch):
    """Ids as plain writes them (true/false, 1.5), dictionary text and the one-column rule as plain reads
    them, a non-UTF-8 file name scored and named; and the session options reach the actors."""
    monkeypatch.chdir(parquet_kinds)
    out = tmp_path / "scores"
    result = CliRunner().invoke(score_cli, ["--engine", "ray", "--workers", "1", "--threads", "1", "--graph-optimization",
                                            "basic", "--no-memory-arena", "--chunk-rows", "7", ".", "-o", str(out)])
    assert result.exit_code == 0, result.output
    rows = _read_output(out)
    by_file: dict[str, list[dict]] = {}
    for row in rows:
        by_file.setdefault(row["file"], []).append(row)
    assert sorted(by_file) == ["./bad\\xffname.csv", "./boolid.parquet", "./dicttext.parquet", "./floatid.parquet",
                               "./onecol.parquet"]
    for name in ("boolid.parquet", "floatid.parquet", "dicttext.parquet"):
        result = CliRunner().invoke(score_cli, [name, "--format", "csv"])  # text ids, as the Ray output's CSV
        plain = list(csv.DictReader(io.StringIO(result.stdout)))
        got = by_file[f"./{name}"]
        assert [r["id"] for r in got] == [r["id"] for r in plain], name  # the same ids, in the same order
        assert all(abs(float(a["probability"]) - float(b["probability"])) <= 1e-6 for a, b in zip(got, plain)), name
    assert [r["id"] for r in by_file["./boolid.parquet"]] == ["true", "false", "true", "false"]
    assert [r["id"] for r in by_file["./floatid.parquet"]] == ["1.5", "2.0", "3.0", "4.0"]
    assert [r["id"] for r in by_file["./onecol.parquet"]] == [f"./onecol.parquet:{i}" for i in range(1, 5)]
    assert [r["id"] for r in by_file["./bad\\xffname.csv"]] == ["x1", "x2"]


@pytest.mark.parametrize("ids, message", [
    ([None, "b"], r"nullid\.parquet: line 1: field 'id' is missing or null"),
    ([b"x", b"y"], r"nullid\.parquet: line 1: field 'id' is bytes, expected a text or number id"),
], ids=["null-id", "binary-id"])
def test_ray_refuses_the_ids_plain_refuses(ray_local, ids, message, tmp_path):
    import re

    import pyarrow as pa
    import pyarrow.parquet as pq

    pq.write_table(pa.table({"id": ids, "text": ["good", "bad"]}), tmp_path / "nullid.parquet")
    plain = CliRunner().invoke(score_cli, [str(tmp_path / "nullid.parquet")])
    assert plain.exit_code == 1 and re.search(message, plain.stderr), plain.stderr
    out = tmp_path / "scores"
    result = CliRunner().invoke(score_cli, ["--engine", "ray", "--workers", "1", str(tmp_path / "nullid.parquet"),
                                            "-o", str(out)])
    assert result.exit_code == 1, result.output
    assert result.stderr.strip().count("\n") == 0 and re.search(message, result.stderr), result.stderr
    assert not out.exists() and _no_partial_folders(tmp_path)


def _job_while(tmp_path: Path, reviews, ray_local, act, rows: int = 3000):
    """A real attn-score --engine ray process joined to the session's Ray, with a private TMPDIR holding
    a planted symlink at the old predictable log name; `act(process, outdir)` runs as soon as the job
    writes its partial folder. Returns (process, stderr, outdir, tmpdir, log modes seen, victim)."""
    import time

    _write_csv(tmp_path / "in.csv", ["text"], [[reviews[i % len(reviews)]] for i in range(rows)])
    tmpdir, victim, out = tmp_path / "tmp", tmp_path / "victim.txt", tmp_path / "scores"
    tmpdir.mkdir()
    victim.write_text("")
    address = ray_local.get_runtime_context().gcs_address
    env = {**os.environ, "PYTHONPATH": str(REPO), "TMPDIR": str(tmpdir)}
    script = (f'ln -s {victim} "$TMPDIR/attn-ray-$$.log"; exec {sys.executable} -m runtime.cli --engine ray '
              f"--address {address} --workers 1 in.csv -o {out}")
    process = subprocess.Popen(["sh", "-c", script], cwd=tmp_path, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                               text=True, preexec_fn=_sigint_default)
    modes, deadline = set(), time.monotonic() + 240
    while not [p for p in tmp_path.iterdir() if ".partial-" in p.name]:
        modes |= {oct(p.stat().st_mode & 0o777) for p in tmpdir.glob("attn-ray-*.log") if not p.is_symlink()}
        if process.poll() is not None or time.monotonic() > deadline:
            pytest.fail(f"the job never wrote its partial folder: {_finish(process, 10)}")
        time.sleep(0.02)
    act(process, out)
    stderr = _finish(process, 240)
    return process, stderr, out, tmpdir, modes, victim


@pytest.mark.parametrize("signame", ["SIGTERM", "SIGINT", "SIGHUP"])
def test_ray_signal_exit_code_interrupted_line_nothing_left(signame, ray_local, reviews, tmp_path):
    import signal

    signum = getattr(signal, signame)
    process, stderr, out, tmpdir, modes, victim = _job_while(
        tmp_path, reviews, ray_local, lambda process, out: process.send_signal(signum))
    assert process.returncode == 128 + signum, stderr
    assert stderr.strip().splitlines()[-1] == f"interrupted; {out} not written", stderr
    assert "Traceback" not in stderr and "Aborted" not in stderr
    assert not out.exists() and _no_partial_folders(tmp_path)
    assert modes <= {"0o600"}, modes  # the driver's log: private
    assert victim.read_text() == ""  # the planted symlink was not followed
    assert sorted(p.name for p in tmpdir.iterdir() if p.name.startswith("attn-ray-") and not p.is_symlink()) == []


def test_ray_outdir_made_during_the_job_is_not_replaced(ray_local, reviews, tmp_path):
    process, stderr, out, tmpdir, _, _ = _job_while(tmp_path, reviews, ray_local, lambda process, out: out.mkdir(), rows=600)
    assert process.returncode == 1, stderr
    assert stderr.strip().count("\n") == 0 and "appeared while the job ran" in stderr, stderr
    assert out.is_dir() and list(out.iterdir()) == []  # the folder someone made is left as it was
    assert _no_partial_folders(tmp_path)
