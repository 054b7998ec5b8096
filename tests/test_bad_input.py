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
    """A character device in tmp (1,3 = null, 1,7 = full): made with mknod as root; otherwise a symlink to
    the system's /dev/null or /dev/full, which a process that is not root cannot replace. Never skipped."""
    path = tmp / name
    if IS_ROOT:
        os.mknod(path, 0o666 | stat.S_IFCHR, os.makedev(1, minor))
    else:
        path.symlink_to(Path("/dev") / name)
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

    def drain():  # whole or absent: the check polls for `received` and must not read it half written
        with open(tmp / "pipe", "rb") as pipe:
            (tmp / "received.part").write_bytes(pipe.read())
        os.replace(tmp / "received.part", received)

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
        assert stat.S_ISCHR(os.stat(tmp / name).st_mode), f"{name} was replaced by a regular file"
        assert not stat.S_ISREG(os.lstat(tmp / name).st_mode), f"{name} was replaced by a regular file"
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
    assert (tmp / "results" / "out.csv").read_text().startswith(
        "id,probability,label,token_count,oov_share,truncated_tokens,status\n")


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
    if "--model" not in argv and not case.extra.get("default_model"):
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
    # SIGINT back to its default in the child: a shell that runs pytest in the background ignores it,
    # and an ignored SIGINT is inherited (the command rightly keeps an ignored SIGINT ignored).
    return subprocess.Popen([sys.executable, "-m", "runtime.cli", *args, "--model", str(SMALL)],
                            env=ENV, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL), **kwargs)


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
    done = _private_tmpfs(folder, "size=16k", _score_command(tmp_path, folder / "out.csv"),
                          prepare.format(folder=folder))
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


# === Loading the wrong model (items 8-10, issue 21: the manifest is the contract) ===
SPA = REPO / "artifacts" / "spa-eng-attention"


def _bundle(tmp: Path, edit: Callable[[dict, Path], None] | None = None, name: str = "bundle") -> Path:
    """A copy of the small IMDB bundle, its manifest edited by `edit(manifest, folder)`; graph sha256s
    are recomputed afterwards, so a case tests the check it names, not the checksum."""
    import json

    from runtime.bundle import sha256_of

    folder = tmp / name
    shutil.copytree(SMALL, folder)
    manifest = json.loads((folder / "manifest.json").read_text())
    if edit:
        edit(manifest, folder)
    for graph in manifest.get("graphs", {}).values():
        file = folder / graph["file"]
        if file.is_file():
            graph["sha256"] = sha256_of(file)
    (folder / "manifest.json").write_text(json.dumps(manifest))
    return folder


def _model_args(folder: Path) -> list[str]:
    _reviews(folder.parent)
    return [str(folder.parent / "in.csv"), "--model", str(folder)]


def _swap_graph(source: Path):
    def edit(manifest, folder):
        (folder / "model.onnx").unlink()
        shutil.copy(source, folder / "model.onnx")

    return edit


def _write_graph(data: bytes):
    def edit(manifest, folder):
        (folder / "model.onnx").write_bytes(data(folder) if callable(data) else data)

    return edit


def _set(path: str, value):
    def edit(manifest, folder):
        *parents, last = path.split(".")
        target = manifest
        for key in parents:
            target = target[key]
        if value is _DELETE:
            del target[last]
        else:
            target[last] = value

    return edit


_DELETE = object()


def _outside_graph(manifest, folder):
    shutil.copy(folder / "model.onnx", folder.parent / "elsewhere.onnx")
    manifest["graphs"]["model"]["file"] = "../elsewhere.onnx"


def _symlinked_graph(manifest, folder):
    shutil.move(folder / "model.onnx", folder.parent / "elsewhere.onnx")
    os.symlink(folder.parent / "elsewhere.onnx", folder / "model.onnx")


def _external_data(manifest, folder):
    """A valid ONNX graph whose weights are 'external data' in a file outside the bundle folder."""
    import numpy as np
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    weights = numpy_helper.from_array(np.zeros((4,), np.float32), "w")
    weights.data_location = TensorProto.EXTERNAL
    weights.ClearField("raw_data")
    for key, value in (("location", "../../../../etc/passwd"), ("offset", "0"), ("length", "16")):
        entry = weights.external_data.add()
        entry.key, entry.value = key, value
    graph = helper.make_graph([helper.make_node("Identity", ["w"], ["probability"])], "g",
                              [helper.make_tensor_value_info("tokens", TensorProto.INT32, ["b", "t"])],
                              [helper.make_tensor_value_info("probability", TensorProto.FLOAT, [4])], [weights])
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]), folder / "model.onnx")


def _manifest_replaced(content: Callable[[Path], None]):
    def setup(tmp):
        folder = _bundle(tmp)
        content(folder / "manifest.json")
        return _model_args(folder)

    return setup


def _nested_manifest(path: Path):
    path.write_text("[" * 200_000)


def _directory_manifest(path: Path):
    path.unlink()
    path.mkdir()


def _garbage_sentencepiece(manifest, folder):
    import base64

    manifest["tokenizer"]["spec"]["mode"] = "sentencepiece"
    manifest["tokenizer"]["vocab"] = []
    manifest["tokenizer"]["sentencepiece_model"] = base64.b64encode(os.urandom(512)).decode()


def _imdb_folder_here(tmp):
    (tmp / "imdb").mkdir()  # like shared/datasets/imdb: a folder, not a bundle
    _write(tmp / "imdb" / "train.csv", "text,label\nx,1\n")
    _reviews(tmp)
    return ["in.csv"]


def _imdb_bundle_here(tmp):
    _bundle(tmp, _set("labels", ["WRONG-NEG", "WRONG-POS"]), name="imdb")
    _reviews(tmp)
    return ["in.csv", "--model", "imdb"]


def _shipped_labels(tmp, result):
    assert "WRONG" not in result.stdout and result.stdout.count("\n") == 4


def _path_is_a_path(tmp):
    (tmp / "imdb").mkdir()
    _reviews(tmp)
    return ["in.csv", "--model", "./imdb"]


def _unknown_name(tmp):
    _bundle(tmp, name="mybundle")
    _reviews(tmp)
    return ["in.csv", "--model", "mybundle"]


LOAD_CASES = [
    Case("default-model-ignores-imdb-folder-in-cwd", 8, _imdb_folder_here, 0, "", _shipped_labels,
         extra={"default_model": True}),
    Case("short-name-never-a-cwd-bundle", 8, _imdb_bundle_here, 0, "", _shipped_labels),
    Case("dot-slash-is-a-path", 8, _path_is_a_path, 1, "imdb: not a bundle"),
    Case("unknown-name-lists-shipped", 8, _unknown_name, 1, "write ./mybundle"),
    Case("graph-path-outside-folder", 9, lambda t: _model_args(_bundle(t, _outside_graph)), 1,
         "inside the bundle folder"),
    Case("graph-symlink-outside-folder", 9, lambda t: _model_args(_bundle(t, _symlinked_graph)), 1,
         "outside the bundle folder"),
    Case("graph-external-data", 9, lambda t: _model_args(_bundle(t, _external_data)), 1, "not a loadable ONNX graph"),
    Case("encoder-as-model", 10, lambda t: _model_args(_bundle(t, _swap_graph(SPA / "encoder.onnx"))), 1,
         "not a sentiment 'model' graph"),
    Case("decoder-step-as-model", 10, lambda t: _model_args(_bundle(t, _swap_graph(SPA / "decoder_step.onnx"))), 1,
         "not a sentiment 'model' graph"),
    Case("truncated-graph", 10,
         lambda t: _model_args(_bundle(t, _write_graph(lambda f: (f / "model.onnx").read_bytes()[:5000]))),
         1, "not a loadable ONNX graph"),
    Case("random-graph", 10, lambda t: _model_args(_bundle(t, _write_graph(os.urandom(4096)))), 1,
         "not a loadable ONNX graph"),
    Case("garbage-sentencepiece", 10, lambda t: _model_args(_bundle(t, _garbage_sentencepiece)), 1,
         "field 'tokenizer'"),
    Case("manifest-nested-200k", 10, _manifest_replaced(_nested_manifest), 1, "nested too deeply"),
    Case("manifest-is-directory", 10, _manifest_replaced(_directory_manifest), 1, "is a directory"),
    Case("manifest-not-object", 10, _manifest_replaced(lambda p: p.write_text("[1, 2]")), 1, "expected a JSON object"),
    Case("max-len-float", 10, lambda t: _model_args(_bundle(t, _set("max_len", 2.5))), 1,
         "field 'max_len' should be int"),
    Case("max-len-negative", 10, lambda t: _model_args(_bundle(t, _set("max_len", -5))), 1, "field 'max_len' is -5"),
    Case("missing-vocab", 10, lambda t: _model_args(_bundle(t, _set("tokenizer.vocab", _DELETE))), 1,
         "missing key 'vocab'"),
    Case("manifest-declares-wrong-tensor", 10,
         lambda t: _model_args(_bundle(t, _set("graphs.model.inputs", [{"name": "source"}]))), 1,
         "the contract is tokens"),
    Case("manifest-declares-wrong-type", 10,
         lambda t: _model_args(_bundle(t, _set("graphs.model.inputs", [{"name": "tokens", "type": "float32"}]))), 1,
         "the contract says 'int32'"),
]


@pytest.mark.parametrize("case", LOAD_CASES, ids=lambda case: f"item{case.item}-{case.name}")
def test_bad_bundle(case: Case, tmp_path, monkeypatch):
    test_bad_input(case, tmp_path, monkeypatch)


def test_item10_translator_graph_as_classifier_refused_by_api(tmp_path):
    """runtime.load refuses the wrong graph with a BundleError (the CLI's one line), nothing else."""
    import runtime

    folder = _bundle(tmp_path, _swap_graph(SPA / "encoder.onnx"))
    with pytest.raises(runtime.BundleError, match="its inputs are source, the contract wants tokens"):
        runtime.load(folder)


def test_item10_translation_bundle_needs_its_fields(tmp_path):
    """A translation manifest must carry max_target_len itself (no trainer field with a copied default)."""
    import json

    import runtime

    folder = tmp_path / "spa"
    shutil.copytree(SPA, folder)
    manifest = json.loads((folder / "manifest.json").read_text())
    del manifest["max_target_len"]
    (folder / "manifest.json").write_text(json.dumps(manifest))
    with pytest.raises(runtime.BundleError, match="needs field 'max_target_len'"):
        runtime.load(folder)


# === Inputs and options that crashed or misled (items 11-17) ===
def _file(name: str, content: str | bytes, *extra: str):
    def setup(tmp):
        _write(tmp / name, content)
        return [name, *extra]

    return setup


def _rows_out(expected_ids):
    def check(tmp, result):
        lines = result.stdout.splitlines()
        assert [line.split(",")[0] for line in lines[1:]] == expected_ids, result.stdout

    return check


def _long_name(tmp):
    _reviews(tmp)
    return ["in.csv", "-o", "s" * 240 + ".csv"]


def _long_name_written(tmp, result):
    assert (tmp / ("s" * 240 + ".csv")).read_text().count("\n") == 4
    assert _leftovers(tmp, {"in.csv", "s" * 240 + ".csv"}) == []


def _oov_note(tmp, result):
    assert "1 of 2 sentences" in result.stderr and "<oov>" in result.stderr, result.stderr


INPUT_CASES = [
    Case("jsonl-100k-nested-brackets", 11, _file("in.jsonl", '{"text": ' + "[" * 100_000 + "\n"), 1,
         "line 1: invalid JSON (nested too deeply)"),
    Case("jsonl-5000-digit-id", 11, _file("in.jsonl", '{"id": ' + "7" * 5000 + ', "text": "fine"}\n'), 1,
         "line 1: invalid JSON"),
    Case("jsonl-lone-surrogate-text", 11, _file("in.jsonl", '{"text": "ok"}\n{"text": "bad \\ud800 film"}\n'), 1,
         "line 2: invalid text: a lone surrogate"),
    Case("jsonl-lone-surrogate-id", 11, _file("in.jsonl", '{"id": "\\udfff", "text": "good"}\n'), 1, "lone surrogate"),
    Case("jsonl-surrogate-pair-is-fine", 11, _file("in.jsonl", '{"id": "\\ud83d\\ude00", "text": "good"}\n'), 0, "",
         _rows_out(["\U0001F600"])),
    Case("encoding-nonsense", 11, _file("in.csv", "text\ngood\n", "--encoding", "nonsense"), 1,
         "unknown text encoding 'nonsense'"),
    Case("encoding-not-text", 11, _file("in.csv", "text\ngood\n", "--encoding", "base64"), 1, "unknown text encoding"),
    Case("output-name-240-chars", 11, _long_name, 0, "", _long_name_written),
    Case("utf16-csv", 12,
         _file("in.csv", "id,text\na,good film\nb,bad film\n".encode("utf-16"), "--encoding", "utf-16"), 0, "",
         _rows_out(["a", "b"])),
    Case("utf16le-lines", 12,
         _file("in.txt", "good film\n\nbad film\n".encode("utf-16-le"), "--encoding", "utf-16-le"), 0, "",
         _rows_out(["1", "2", "3"])),
    Case("utf16-bad-bytes-one-line", 12,
         _file("in.txt", "good\n".encode("utf-16-le") + b"\x00\xd8", "--encoding", "utf-16-le"), 1,
         "line 2: not valid utf-16-le"),
    Case("threshold-nan", 13, _file("in.csv", "text\ngood\n", "--threshold", "nan"), 2),
    Case("threshold-inf", 13, _file("in.csv", "text\ngood\n", "--threshold", "inf"), 2),
    Case("threads-unbounded", 14, _file("in.csv", "text\ngood\n", "--threads", "100000"), 2),
    Case("workers-unbounded", 14, _file("in.csv", "text\ngood\n", "--workers", "100000"), 2),
    Case("jsonl-null-id", 15, _file("in.jsonl", '{"id": "a", "text": "good"}\n{"id": null, "text": "bad"}\n'), 1,
         "line 2: field 'id' is missing or null"),
    Case("jsonl-missing-id", 15, _file("in.jsonl", '{"id": "a", "text": "good"}\n{"text": "bad"}\n'), 1,
         "line 2: field 'id' is missing or null"),
    Case("jsonl-number-ids-kept", 15,
         _file("in.jsonl", '{"id": 7, "text": "good"}\n{"id": 2.5, "text": "bad"}\n'), 0, "",
         _rows_out(["7", "2.5"])),
    Case("jsonl-object-id", 15, _file("in.jsonl", '{"id": {"a": 1}, "text": "good"}\n'), 1, "field 'id' is dict"),
    Case("unknown-option-is-usage", 17, _file("in.csv", "text\ngood\n", "--bogus"), 2),
    Case("out-of-range-is-usage", 17, _file("in.csv", "text\ngood\n", "--threshold", "2"), 2),
    Case("missing-file-is-bad-input", 17, lambda tmp: ["nothing.csv"], 1, "nothing.csv: no such file"),
]


@pytest.mark.parametrize("case", INPUT_CASES, ids=lambda case: f"item{case.item}-{case.name}")
def test_bad_option_or_row(case: Case, tmp_path, monkeypatch):
    test_bad_input(case, tmp_path, monkeypatch)


TRANSLATE_CASES = [
    Case("translate-csv-lone-surrogate", 11,
         _file("in.jsonl", '{"text": "hola \\ud800"}\n', "--format", "csv"), 1, "lone surrogate"),
    Case("translate-beam-unbounded", 14, _file("in.txt", "Hola.\n", "--beam-size", "100000"), 2),
    Case("translate-max-length-unbounded", 14, _file("in.txt", "Hola.\n", "--max-length", "100000000"), 2),
    Case("translate-utf16", 12,
         _file("in.txt", "Hola.\nGracias.\n".encode("utf-16"), "--encoding", "utf-16", "--beam-size", "1"), 0, "",
         lambda tmp, result: len(result.stdout.splitlines()) == 2 or pytest.fail(result.stdout)),
    Case("translate-oov-said", 16, _file("in.txt", "Hola.\n안녕하세요 친구\n", "--beam-size", "1"), 0, "", _oov_note),
]


@pytest.mark.parametrize("case", TRANSLATE_CASES, ids=lambda case: f"item{case.item}-{case.name}")
def test_translate_bad_input(case: Case, tmp_path, monkeypatch):
    from runtime.cli import translate_main

    monkeypatch.chdir(tmp_path)
    result = CliRunner().invoke(translate_main, case.setup(tmp_path), catch_exceptions=False)
    assert result.exit_code == case.code, result.output
    assert "Traceback" not in result.stderr
    if case.code == 1:
        assert result.stderr.strip().count("\n") == 0 and case.message in result.stderr, result.stderr
    if case.check:
        case.check(tmp_path, result)


def test_item11_read_only_folder_one_line(tmp_path):
    _reviews(tmp_path)
    folder = tmp_path / "ro"
    done = _private_tmpfs(folder, "ro,size=16k", _score_command(tmp_path, folder / "out.csv"))
    assert "rc=1" in done.stderr and "Traceback" not in done.stderr, done.stderr
    assert "out.csv: cannot write (read-only file system)" in done.stderr


def test_item11_translate_stdout_full_one_line(tmp_path):
    full = _device(tmp_path, "full", 7)
    _write(tmp_path / "in.txt", "Hola.\n")
    with open(full, "wb") as stdout:
        done = subprocess.run([sys.executable, "-c", "from runtime.cli import translate_main; translate_main()",
                               "in.txt", "--beam-size", "1"], cwd=tmp_path, env=ENV, stdout=stdout,
                              stderr=subprocess.PIPE, text=True, timeout=120)
    assert done.returncode == 1, done.stderr
    assert done.stderr.strip() == "Error: stdout: cannot write (no space left on device)"


def test_keras_lambda_layer_refused_by_safe_mode(tmp_path):
    """A bundle's training/ model with a Lambda layer (arbitrary code) is refused, not run (safe_mode)."""
    import keras

    from runtime.tokenizer import Tokenizer, TokenizerSpec
    from trainer.fit import combine_trained

    inputs = keras.Input((4,))
    model = keras.Model(inputs, keras.layers.Lambda(lambda x: x * 2)(inputs))
    folders = []
    for name in ("a", "b"):
        training = tmp_path / name / "training"
        training.mkdir(parents=True)
        model.save(training / "model.keras")
        Tokenizer(TokenizerSpec(max_len=4), ["good", "bad"]).save(training / "tokenizer.json")
        folders.append(tmp_path / name)
    with pytest.raises(ValueError, match="(?i)lambda|safe_mode"):
        combine_trained(folders)


# === Issue 33: keep-columns, Parquet, reports, bundles and the API (a hostile probe, 2026-12-01) ===
def _clash(tmp, name="clash.csv", header="id,text,label,input_label", row="{i},film {i},L{i},IL{i}"):
    return _write(tmp / name, header + "\n" + "".join(row.format(i=i) + "\n" for i in (1, 2)))


def _jsonl_rows(result) -> list[dict]:
    import json

    return [json.loads(line) for line in result.stdout.splitlines()]


def _clash_kept(tmp, result):
    """Both input columns survive under distinct names; the command's own label is the prediction."""
    rows = _jsonl_rows(result)
    assert [(r["input_input_label"], r["input_label"]) for r in rows] == [("L1", "IL1"), ("L2", "IL2")], rows
    assert {r["label"] for r in rows} <= {"positive", "negative"}


def _clash_csv_header(tmp, result):
    header = result.stdout.splitlines()[0].split(",")
    assert header == ["id", "text", "input_input_label", "input_label", "probability", "label", "token_count",
                      "oov_share", "truncated_tokens", "status"], header
    assert result.stdout.splitlines()[1].split(",")[2:4] == ["L1", "IL1"]


def _clash_parquet(tmp, result):
    import pyarrow.parquet as pq

    table = pq.read_table(tmp / "out.parquet")
    assert table.column("input_input_label").to_pylist() == ["L1", "L2"]
    assert table.column("input_label").to_pylist() == ["IL1", "IL2"]


def _rescore(tmp):
    """Re-scoring an earlier --keep-all output: its ground truth and its predictions both stay."""
    _write(tmp / "labelled.csv", "id,text,label\n1,a good film,pos\n2,a bad film,neg\n")
    first = CliRunner().invoke(score_main, ["labelled.csv", "--keep-all", "-o", "r1.csv", "--model", str(SMALL)])
    assert first.exit_code == 0, first.output
    return ["r1.csv", "--keep-all", "--format", "jsonl"]


def _rescore_kept(tmp, result):
    rows = _jsonl_rows(result)
    assert [r["input_label"] for r in rows] == ["pos", "neg"], rows  # run 1's input_label: the ground truth
    assert {r["input_input_label"] for r in rows} <= {"positive", "negative"}  # run 1's predictions
    assert "input_probability" in rows[0]


def _exotic_parquet(tmp):
    import datetime
    import decimal

    import pyarrow as pa
    import pyarrow.parquet as pq

    table = pa.table({
        "text": ["a good film", "a bad film"],
        "when": pa.array([datetime.datetime(2026, 12, 1, 8, 30, tzinfo=datetime.timezone.utc), None],
                         pa.timestamp("us", "UTC")),
        "day": pa.array([datetime.date(2026, 1, 2), datetime.date(2026, 1, 3)]),
        "price": pa.array([decimal.Decimal("12.50"), decimal.Decimal("-0.01")], pa.decimal128(6, 2)),
        "blob": pa.array([b"\x00\xffx", b""], pa.binary()),
    })
    pq.write_table(table, tmp / "exotic.parquet")


def _exotic(fmt):
    def setup(tmp):
        _exotic_parquet(tmp)
        return ["exotic.parquet", "--keep-all", "--format", fmt, "-o", f"out.{fmt}"]

    return setup


_EXOTIC = [["2026-12-01T08:30:00+00:00", "2026-01-02", "12.50", "AP94"], [None, "2026-01-03", "-0.01", ""]]


def _exotic_csv(tmp, result):
    import csv

    rows = list(csv.DictReader((tmp / "out.csv").open(encoding="utf-8")))
    assert [[r["when"], r["day"], r["price"], r["blob"]] for r in rows] == [[v or "" for v in row] for row in _EXOTIC]


def _exotic_jsonl(tmp, result):
    import json

    rows = [json.loads(line) for line in (tmp / "out.jsonl").read_text(encoding="utf-8").splitlines()]
    assert [[r["when"], r["day"], r["price"], r["blob"]] for r in rows] == _EXOTIC


def _cr_only(tmp, result):
    assert [line.split(",")[0] for line in result.stdout.splitlines()] == ["id", "1", "2", "3"], result.stdout


def _report_hard_link(tmp):
    _reviews(tmp)
    os.link(tmp / "in.csv", tmp / "report.html")
    return ["in.csv", "--report", "report.html", "-o", "out.csv"]


def _report_no_folder(tmp):
    _reviews(tmp)
    return ["in.csv", "--report", "nodir/report.html", "-o", "out.csv"]


def _nothing_written(tmp, result):
    assert not (tmp / "out.csv").exists(), "the output was written before the --report path was checked"
    assert (tmp / "in.csv").read_text().count("a good film") == 3


def _report_bad_name(tmp):
    name = os.fsdecode(b"bad\xffname.csv")
    _reviews(tmp, name)
    return [name, "--report", "report.html", "-o", "out.csv"]


def _report_names_it(tmp, result):
    assert "bad\\xffname.csv" in (tmp / "report.html").read_text(encoding="utf-8")
    assert (tmp / "out.csv").read_text().count("\n") == 4


def _ray_symlink_twice(tmp):
    _reviews(tmp, "a.csv")
    os.symlink("a.csv", tmp / "alink.csv")
    return ["--engine", "ray", "a.csv", "alink.csv", "-o", "outdir"]


def _bigger_vocabulary(manifest, folder):
    manifest["tokenizer"]["vocab"] += [f"zzextra{i}" for i in range(5)]  # 5 ids past the graph's embedding


ISSUE33_CASES = [
    Case("keep-all-name-collision-jsonl", 1, lambda t: [str(_clash(t).name), "--keep-all", "--format", "jsonl"], 0, "",
         _clash_kept),
    Case("keep-columns-name-collision-csv", 1, lambda t: [_clash(t).name, "--keep-columns", "text,label,input_label"],
         0, "", _clash_csv_header),
    Case("keep-all-name-collision-parquet", 1,
         lambda t: [_clash(t).name, "--keep-all", "--format", "parquet", "-o", "out.parquet"], 0, "", _clash_parquet),
    Case("keep-all-rescoring-keeps-ground-truth", 1, _rescore, 0, "", _rescore_kept),
    Case("kept-parquet-types-to-csv", 6, _exotic("csv"), 0, "", _exotic_csv),
    Case("kept-parquet-types-to-jsonl", 6, _exotic("jsonl"), 0, "", _exotic_jsonl),
    Case("vocabulary-larger-than-embedding", 8, lambda t: _model_args(_bundle(t, _bigger_vocabulary)), 1,
         "graph's embedding has"),
    Case("report-hard-linked-to-input-before-work", 13, _report_hard_link, 1, "is the input file", _nothing_written),
    Case("report-missing-folder-before-work", 13, _report_no_folder, 1, "does not exist", _nothing_written),
    Case("report-non-utf8-input-name", 14, _report_bad_name, 0, "", _report_names_it),
    Case("ray-same-file-through-symlink", 18, _ray_symlink_twice, 1, "named twice (also as a.csv)"),
    Case("cr-only-lines-are-line-ends", 19, _file("in.txt", "good film\rbad film\rfine film\r"), 0, "", _cr_only),
]


@pytest.mark.parametrize("case", ISSUE33_CASES, ids=lambda case: f"i33-{case.item}-{case.name}")
def test_issue33(case: Case, tmp_path, monkeypatch):
    test_bad_input(case, tmp_path, monkeypatch)


ISSUE33_TRANSLATE_CASES = [
    Case("translate-keep-all-name-collision", 1,
         lambda t: [_clash(t, "t.csv", "id,text,source,input_source", "{i},Hola {i}.,S{i},IS{i}").name, "--keep-all",
                    "--format", "jsonl", "--beam-size", "1"], 0, "",
         lambda t, result: [(r["input_input_source"], r["input_source"]) for r in _jsonl_rows(result)]
         == [("S1", "IS1"), ("S2", "IS2")] or pytest.fail(result.stdout)),
    Case("translate-cr-only-lines-are-line-ends", 19,
         _file("in.txt", "Hola.\rGracias.\rAdiós.\r\n", "--beam-size", "1"), 0, "",
         lambda t, result: len(result.stdout.splitlines()) == 3 or pytest.fail(result.stdout)),
]


@pytest.mark.parametrize("case", ISSUE33_TRANSLATE_CASES, ids=lambda case: f"i33-{case.item}-{case.name}")
def test_issue33_translate(case: Case, tmp_path, monkeypatch):
    test_translate_bad_input(case, tmp_path, monkeypatch)


def _limited(args: list[str], cwd: Path) -> subprocess.CompletedProcess:
    """The command in a process with 2 GB of address space and 300 s: a hang or an unbounded read fails the
    test instead of taking the machine."""
    import resource

    def limit():
        resource.setrlimit(resource.RLIMIT_AS, (2 * 2**30, 2 * 2**30))

    return subprocess.run([sys.executable, "-m", "runtime.cli", *args], cwd=cwd, env=ENV, capture_output=True,
                          text=True, timeout=300, preexec_fn=limit)  # start-up alone can take minutes at load 100+


@pytest.mark.parametrize("kind", ["fifo", "dev-zero"])
def test_issue33_item9_manifest_must_be_a_regular_file(kind, tmp_path):
    folder = _bundle(tmp_path)
    (folder / "manifest.json").unlink()
    if kind == "fifo":
        os.mkfifo(folder / "manifest.json")
    else:
        os.symlink("/dev/zero", folder / "manifest.json")
    _reviews(tmp_path)
    done = _limited(["in.csv", "--model", str(folder)], tmp_path)
    assert done.returncode == 1, done.stderr
    assert done.stderr.strip().count("\n") == 0 and "manifest.json: not a regular file" in done.stderr, done.stderr


def test_issue33_item9_manifest_size_is_capped(tmp_path, monkeypatch):
    import runtime
    import runtime.bundle

    # the real cap is 128 MiB; the bundle's is 345 KB
    monkeypatch.setattr(runtime.bundle, "MAX_MANIFEST_BYTES", 100_000)
    with pytest.raises(runtime.BundleError, match=r"manifest\.json: larger than 0 MiB; not a manifest"):
        runtime.load(_bundle(tmp_path))


def test_issue33_item12_api_validates_like_the_cli():
    import runtime

    classifier = runtime.load(SMALL)
    for top_k in (-1, -3, 2.5):
        with pytest.raises(ValueError, match="top_k must be a whole number >= 0"):
            classifier.explain(["A wonderful, moving film."], top_k=top_k)
    assert len(classifier.explain(["A wonderful, moving film."], top_k=None)[0]) == 4
    for threshold in (float("nan"), 2, -0.1):
        with pytest.raises(ValueError, match="threshold must be a probability from 0 to 1"):
            classifier.predict_labels(["good"], threshold=threshold)
        with pytest.raises(ValueError, match="threshold must be a probability"):
            classifier.predict_labels([], threshold=threshold)
    for options, message in (({"threads": -2}, "^threads must be >= 0"),
                             ({"bogus": 1}, "unknown option 'bogus'; the options are: threads")):
        with pytest.raises(ValueError, match=message):  # an option, not "not a loadable ONNX graph"
            runtime.load(SMALL, session_options=options)
    translator = runtime.load("spa-eng")
    for max_length in (-5, 0, 2.5):
        with pytest.raises(ValueError, match="max_length must be a whole number >= 1"):
            translator.translate(["Hola."], max_length=max_length)
