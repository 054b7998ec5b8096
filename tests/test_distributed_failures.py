"""The Ray engine when something goes wrong, on a real local Ray: a bad file among many fails the
whole job with one line and nothing under the final name; columns and the output are checked
before any job; an unreachable cluster is named in bounded time; ids the plain command refuses are
refused; a signal exits 128 + N with nothing left; an OUTDIR made meanwhile is never replaced."""

from __future__ import annotations

import csv
import io
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner
from ray_files import no_partial_folders, read_output, write_csv

from runtime.cli import main as score_cli

REPO = Path(__file__).resolve().parents[1]


def _ten_files(folder: Path, reviews) -> list[Path]:
    folder.mkdir()
    paths = []
    for n in range(10):
        path = folder / f"part{n}.csv"
        write_csv(path, ["id", "text"], [[f"{n}-{i}", t] for i, t in enumerate(reviews[n * 12:(n + 1) * 12])])
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
        write_csv(path, ["id", "text"], [[str(i), reviews[i % len(reviews)]] for i in range(300)])
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
    assert no_partial_folders(tmp_path)


def test_cli_checks_columns_and_output_before_starting(ray_local, reviews, tmp_path):
    folder = tmp_path / "in"
    _ten_files(folder, reviews)
    write_csv(folder / "part4.csv", ["id", "review"], [["1", "x"]])
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
    result = CliRunner().invoke(score_cli,
                                ["--engine", "ray", str(folder / "nothing-*.csv"), "-o", str(tmp_path / "x")])
    assert result.exit_code == 1 and "no file matches" in result.stderr
    result = CliRunner().invoke(score_cli,
                                ["--engine", "ray", "--workers", "3", str(folder), "-o", str(tmp_path / "x")])
    assert result.exit_code == 1 and "needs 3 CPUs; the Ray cluster has 2" in result.stderr
    result = CliRunner().invoke(score_cli, [str(folder / "part0.csv"), str(folder / "part1.csv")])
    assert result.exit_code == 2 and "--engine ray" in result.stderr  # the plain engine reads one INPUT


def test_cli_joins_a_running_cluster_with_address(ray_local, reviews, tmp_path):
    """A separate process joins the session's Ray with --address, as on a cluster."""
    write_csv(tmp_path / "in.csv", ["text"], [[t] for t in reviews[:20]])
    address = ray_local.get_runtime_context().gcs_address
    out = tmp_path / "scores"
    done = subprocess.run([sys.executable, "-m", "runtime.cli", "--engine", "ray",
                           "--address", address, "--workers", "1",
                           str(tmp_path / "in.csv"), "-o", str(out)], capture_output=True, text=True, cwd=tmp_path,
                          env={**os.environ, "PYTHONPATH": str(REPO)}, timeout=300)
    assert done.returncode == 0, done.stderr
    assert done.stderr.strip().splitlines()[-1].startswith("scored 20 rows of 1 file")
    assert len(read_output(out)) == 20 and (out / "_SUCCESS").is_file()


# === Issue 33: the Ray engine writes what the plain command writes, or says why not, in bounded time ===
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
    write_csv(tmp_path / "in.csv", ["text"], [["good"]])
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
    result = CliRunner().invoke(score_cli, ["--engine", "ray", "--workers", "1",
                                            "--threads", "1", "--graph-optimization",
                                            "basic", "--no-memory-arena", "--chunk-rows", "7", ".", "-o", str(out)])
    assert result.exit_code == 0, result.output
    rows = read_output(out)
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
    assert not out.exists() and no_partial_folders(tmp_path)


def _job_while(tmp_path: Path, reviews, ray_local, act, rows: int = 3000):
    """A real attn-score --engine ray process joined to the session's Ray, with a private TMPDIR holding
    a planted symlink at the old predictable log name; `act(process, outdir)` runs as soon as the job
    writes its partial folder. Returns (process, stderr, outdir, tmpdir, log modes seen, victim)."""
    import time

    write_csv(tmp_path / "in.csv", ["text"], [[reviews[i % len(reviews)]] for i in range(rows)])
    tmpdir, victim, out = tmp_path / "tmp", tmp_path / "victim.txt", tmp_path / "scores"
    tmpdir.mkdir()
    victim.write_text("")
    address = ray_local.get_runtime_context().gcs_address
    env = {**os.environ, "PYTHONPATH": str(REPO), "TMPDIR": str(tmpdir)}
    script = (f'ln -s {victim} "$TMPDIR/attn-ray-$$.log"; exec {sys.executable} -m runtime.cli --engine ray '
              f"--address {address} --workers 1 in.csv -o {out}")
    process = subprocess.Popen(["sh", "-c", script], cwd=tmp_path, env=env, stdout=subprocess.PIPE,
                               stderr=subprocess.PIPE, text=True, preexec_fn=_sigint_default)
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
    assert not out.exists() and no_partial_folders(tmp_path)
    assert modes <= {"0o600"}, modes  # the driver's log: private
    assert victim.read_text() == ""  # the planted symlink was not followed
    assert sorted(p.name for p in tmpdir.iterdir() if p.name.startswith("attn-ray-") and not p.is_symlink()) == []


def test_ray_outdir_made_during_the_job_is_not_replaced(ray_local, reviews, tmp_path):
    process, stderr, out, tmpdir, _, _ = _job_while(tmp_path, reviews, ray_local,
                                                    lambda process, out: out.mkdir(), rows=600)
    assert process.returncode == 1, stderr
    assert stderr.strip().count("\n") == 0 and "appeared while the job ran" in stderr, stderr
    assert out.is_dir() and list(out.iterdir()) == []  # the folder someone made is left as it was
    assert no_partial_folders(tmp_path)
