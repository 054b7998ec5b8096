"""Hostile input, table-driven (issue 20): every case must end in a useful result or one clear line
with the documented exit code (0 ok, 1 bad input/bundle/output, 2 usage, 128+N signal), never a
traceback, never a lost row, never a replaced input or special file, never a partial output file.

Runs against the small shipped int8 IMDB bundle (1.7 MB) through click's CliRunner; a real process
only where a signal, a file descriptor or a private mount namespace is needed.
"""

from __future__ import annotations

import gzip
import os
import shutil
import signal
import stat
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import pytest
from click.testing import CliRunner

from runtime.cli import main as score_main

REPO = Path(__file__).resolve().parents[1]
SMALL = REPO / "artifacts" / "imdb-bilstm-attention-int8"
IS_ROOT = hasattr(os, "geteuid") and os.geteuid() == 0
ENV = {**os.environ, "PYTHONPATH": str(REPO)}


def _write(path: Path, text: str | bytes) -> Path:
    path.write_bytes(text if isinstance(text, bytes) else text.encode("utf-8"))
    return path


def _reviews(tmp: Path, name: str = "in.csv", rows: int = 3) -> Path:
    return _write(tmp / name, "id,text\n" + "".join(f"{i},a good film number {i}\n" for i in range(1, rows + 1)))


def _device(tmp: Path, name: str, minor: int) -> Path:
    """A character device made in tmp (1,3 = null, 1,7 = full): the system's /dev is never touched."""
    if not IS_ROOT:
        pytest.skip("making a device node needs root")
    path = tmp / name
    os.mknod(path, 0o666 | stat.S_IFCHR, os.makedev(1, minor))
    return path


def _leftovers(folder: Path, keep: set[str]) -> list[str]:
    return sorted(p.name for p in folder.iterdir() if p.name not in keep)


@dataclass
class Case:
    """`setup(tmp)` returns the argv (bundle added unless given); `check(tmp, result)` asserts the effect."""

    name: str
    item: int
    setup: Callable[[Path], list[str]]
    code: int = 0
    message: str = ""  # a fragment of the one-line error
    check: Callable[[Path, object], None] | None = None
    umask: int | None = None
    extra: dict = field(default_factory=dict)


# === Data loss and unsafe writes (items 1-7) ===
def _same_file(tmp):
    _reviews(tmp, "x.csv")
    return ["x.csv", "-o", "x.csv"]


def _same_file_link(tmp):
    _reviews(tmp, "x.csv")
    os.symlink("x.csv", tmp / "link.csv")
    return ["x.csv", "-o", "link.csv"]


def _input_kept(tmp, result):
    assert (tmp / "x.csv").read_text().count("a good film") == 3
    assert _leftovers(tmp, {"x.csv", "link.csv"}) == []


def _blank_line(tmp):
    _write(tmp / "f.csv", "text\ngood film\n\nbad film\n")
    return ["f.csv", "-o", "out.csv"]


def _three_rows(tmp, result):
    lines = (tmp / "out.csv").read_text().splitlines()
    assert [line.split(",")[0] for line in lines] == ["id", "1", "2", "3"]


def _fifo(tmp):
    os.mkfifo(tmp / "pipe")
    received = tmp / "received"

    def drain():
        with open(tmp / "pipe", "rb") as pipe:
            received.write_bytes(pipe.read())

    threading.Thread(target=drain, daemon=True).start()
    _reviews(tmp)
    return ["in.csv", "-o", "pipe"]


def _fifo_kept(tmp, result):
    assert stat.S_ISFIFO(os.lstat(tmp / "pipe").st_mode), "the FIFO was replaced by a file"
    for _ in range(100):
        if (tmp / "received").exists():
            break
        time.sleep(0.05)
    assert (tmp / "received").read_text().count("\n") == 4
    assert _leftovers(tmp, {"pipe", "received", "in.csv"}) == []


def _null_device(tmp):
    _device(tmp, "null", 3)
    _reviews(tmp)
    return ["in.csv", "-o", "null"]


def _full_device(tmp):
    _device(tmp, "full", 7)
    _reviews(tmp)
    return ["in.csv", "-o", "full"]


def _still_device(name):
    def check(tmp, result):
        assert stat.S_ISCHR(os.lstat(tmp / name).st_mode), f"{name} was replaced by a regular file"
        assert _leftovers(tmp, {name, "in.csv"}) == []

    return check


def _new_file(tmp):
    _reviews(tmp)
    return ["in.csv", "-o", "out.csv"]


def _mode(expected):
    def check(tmp, result):
        assert stat.S_IMODE(os.stat(tmp / "out.csv").st_mode) == expected

    return check


def _existing_file(tmp):
    _reviews(tmp)
    _write(tmp / "out.csv", "old")
    os.chmod(tmp / "out.csv", 0o640)
    return ["in.csv", "-o", "out.csv"]


def _through_link(tmp):
    _reviews(tmp)
    (tmp / "results").mkdir()
    _write(tmp / "results" / "out.csv", "old")
    os.symlink("results/out.csv", tmp / "latest.csv")
    return ["in.csv", "-o", "latest.csv"]


def _link_kept(tmp, result):
    assert os.path.islink(tmp / "latest.csv"), "the symlink was replaced by a file"
    assert (tmp / "results" / "out.csv").read_text().startswith("id,probability,label\n")


def _gzip_output(tmp):
    _reviews(tmp)
    return ["in.csv", "-o", "out.csv.gz"]


def _gzip_readable(tmp, result):
    with gzip.open(tmp / "out.csv.gz", "rt") as handle:
        assert handle.read().count("\n") == 4


CASES = [
    Case("output-is-input", 2, _same_file, 1, "is the input file", _input_kept),
    Case("output-is-input-through-symlink", 2, _same_file_link, 1, "is the input file", _input_kept),
    Case("one-column-blank-line-is-a-row", 3, _blank_line, 0, "", _three_rows),
    Case("output-fifo-written-in-place", 1, _fifo, 0, "", _fifo_kept),
    Case("output-null-device-kept", 1, _null_device, 0, "", _still_device("null")),
    Case("output-full-device-one-line", 1, _full_device, 1, "no space left on device", _still_device("full")),
    Case("new-output-follows-umask", 6, _new_file, 0, "", _mode(0o644), umask=0o022),
    Case("new-output-follows-umask-027", 6, _new_file, 0, "", _mode(0o640), umask=0o027),
    Case("existing-output-keeps-mode", 6, _existing_file, 0, "", _mode(0o640), umask=0o077),
    Case("output-symlink-written-through", 6, _through_link, 0, "", _link_kept),
    Case("gz-output-is-gzip", 7, _gzip_output, 0, "", _gzip_readable),
]


@pytest.mark.parametrize("case", CASES, ids=lambda case: f"item{case.item}-{case.name}")
def test_bad_input(case: Case, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    argv = case.setup(tmp_path)
    if "--model" not in argv:
        argv += ["--model", str(SMALL)]
    old_umask = os.umask(case.umask) if case.umask is not None else None
    try:
        result = CliRunner().invoke(score_main, argv, catch_exceptions=False)
    finally:
        if old_umask is not None:
            os.umask(old_umask)
    assert result.exit_code == case.code, result.output
    assert "Traceback" not in result.stderr
    if case.code == 1:
        assert result.stderr.strip().count("\n") == 0, result.stderr
        assert case.message in result.stderr
    if case.check:
        case.check(tmp_path, result)


# === In a real process: signals, stdout, a full or read-only file system ===
def _cli(*args, **kwargs) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "runtime.cli", *args, "--model", str(SMALL)],
                            env=ENV, stdout=subprocess.PIPE, stderr=subprocess.PIPE, **kwargs)


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGHUP, signal.SIGINT], ids=lambda s: s.name)
def test_item4_signal_leaves_no_partial_file(signum, tmp_path):
    _write(tmp_path / "big.csv", "text\n" + "a good film and a bad one\n" * 400_000)
    process = _cli("big.csv", "-o", "out.csv", "--no-progress", cwd=tmp_path)
    deadline = time.monotonic() + 60
    while not any(p.name.endswith(".partial") for p in tmp_path.iterdir()):
        assert process.poll() is None and time.monotonic() < deadline, process.communicate()
        time.sleep(0.05)
    process.send_signal(signum)
    _, stderr = process.communicate(timeout=60)
    assert process.returncode == 128 + signum, stderr
    assert b"Traceback" not in stderr
    assert _leftovers(tmp_path, {"big.csv"}) == []


def _private_tmpfs(folder: Path, options: str, command: str, prepare: str = "") -> subprocess.CompletedProcess:
    """Run `command` with a small tmpfs mounted on `folder` in a private mount namespace (root only)."""
    if not IS_ROOT or shutil.which("unshare") is None:
        pytest.skip("a private mount namespace needs root and unshare")
    folder.mkdir()
    script = f"mount -t tmpfs -o {options} tmpfs {folder} && {prepare} {command}; echo rc=$? >&2; ls -A {folder} >&2"
    return subprocess.run(["unshare", "-m", "--propagation", "private", "sh", "-c", script],
                          env=ENV, capture_output=True, text=True, timeout=120)


def _score_command(tmp: Path, output: Path) -> str:
    return f"{sys.executable} -m runtime.cli {tmp / 'in.csv'} -o {output} --model {SMALL}"


@pytest.mark.parametrize("rows, prepare", [
    (2000, ""),  # fills the disk mid-write
    (3, "dd if=/dev/zero of={folder}/filler bs=4096 count=100 2>/dev/null;"),  # full at the final flush
], ids=["mid-write", "at-close"])
def test_item5_disk_full_one_line_no_partial(tmp_path, rows, prepare):
    _reviews(tmp_path, rows=rows)
    folder = tmp_path / "small"
    done = _private_tmpfs(folder, "size=16k", _score_command(tmp_path, folder / "out.csv"), prepare.format(folder=folder))
    assert "rc=1" in done.stderr, done.stderr
    assert "Traceback" not in done.stderr
    assert "out.csv: cannot write (no space left on device)" in done.stderr
    assert ".partial" not in done.stderr and "out.csv\n" not in done.stderr.split("rc=1")[1]


def test_item5_stdout_full_one_line(tmp_path):
    full = _device(tmp_path, "full", 7)
    _reviews(tmp_path)
    with open(full, "wb") as stdout:
        done = subprocess.run([sys.executable, "-m", "runtime.cli", "in.csv", "--model", str(SMALL)], cwd=tmp_path,
                              env=ENV, stdout=stdout, stderr=subprocess.PIPE, text=True, timeout=120)
    assert done.returncode == 1, done.stderr
    assert done.stderr.strip() == "Error: stdout: cannot write (no space left on device)"
