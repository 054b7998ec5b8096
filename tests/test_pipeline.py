"""The streaming pipeline behind attn-score / attn-translate: order, errors, Ctrl-C, bounded memory."""

from __future__ import annotations

import csv
import json
import os
import random
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

from runtime.cli import main as score_main
from runtime.engines.local import ordered_map

REPO = Path(__file__).resolve().parents[1]
WORDS = "great awful film plot actor boring brilliant waste loved hated music scene".split()


def reviews(count: int, seed: int = 0) -> list[str]:
    rng = random.Random(seed)
    return [" ".join(rng.choices(WORDS, k=rng.randint(0, 30))) for _ in range(count)]


def write_csv(path: Path, ids, texts) -> None:
    with open(path, "w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(["id", "text"])
        writer.writerows(zip(ids, texts))


def test_ordered_map_keeps_order_when_workers_finish_out_of_order():
    alive, most_alive, lock = [0], [0], threading.Lock()

    def prepare(chunk):
        with lock:
            alive[0] += 1
            most_alive[0] = max(most_alive[0], alive[0])
        return chunk

    def work(chunk):
        time.sleep(random.Random(chunk[0]).random() * 0.01)  # later chunks often finish first
        return [x * 2 for x in chunk]

    out = []
    for chunk, doubled in ordered_map(([i, i + 1] for i in range(0, 400, 2)), prepare, work, workers=4, depth=6):
        out.extend(doubled)
        with lock:
            alive[0] -= 1
    assert out == [2 * i for i in range(400)]
    assert most_alive[0] <= 6  # bounded: never more than `depth` chunks in flight


def test_ordered_map_reraises_errors_in_chunk_order():
    def chunks():
        yield from ([i] for i in range(5))
        raise ValueError("line 6: bad")

    seen = []
    with pytest.raises(ValueError, match="line 6"):
        for chunk, result in ordered_map(chunks(), lambda c: c, lambda c: c, workers=2):
            seen.append(result[0])
    assert seen == [0, 1, 2, 3, 4]


def test_cli_order_and_ids_across_tiny_chunks(tiny_bundle, tmp_path):
    import runtime

    texts = reviews(1500)
    texts[100], texts[101] = "", "   "
    ids = [f"r{i}" for i in range(len(texts))]
    source, out = tmp_path / "in.csv", tmp_path / "out.csv"
    write_csv(source, ids, texts)
    result = CliRunner().invoke(score_main, [str(source), "--model", str(tiny_bundle), "-o", str(out),
                                             "--chunk-rows", "7", "--workers", "3", "--explain", "2"])
    assert result.exit_code == 0, result.output
    with open(out, newline="", encoding="utf-8") as handle:
        rows = list(csv.DictReader(handle))
    assert [r["id"] for r in rows] == ids
    expected = runtime.load(tiny_bundle).predict(texts)
    assert [r["status"] for r in rows][100:102] == ["empty", "empty"] and rows[100]["probability"] == ""
    np.testing.assert_allclose([float(r["probability"] or expected[i]) for i, r in enumerate(rows)], expected,
                               atol=1e-6)
    assert rows[100]["explanation"] == "[]" and all(e["token"] in texts[5] for e in json.loads(rows[5]["explanation"]))


def test_cli_error_deep_in_the_file_names_the_line_and_leaves_nothing(tiny_bundle, tmp_path):
    source, out = tmp_path / "in.csv", tmp_path / "out.csv"
    texts = reviews(12_000)
    write_csv(source, range(12_000), texts)
    lines = source.read_bytes().split(b"\n")
    lines[10_000] = lines[10_000] + b" caf\xe9"  # data row 10,000 is file line 10,001
    source.write_bytes(b"\n".join(lines))
    result = CliRunner().invoke(score_main,
                                [str(source), "--model", str(tiny_bundle), "-o", str(out), "--chunk-rows", "256"])
    assert result.exit_code == 1
    assert "line 10001: byte 0xe9" in result.output and len(result.output.strip().splitlines()) == 1
    assert not out.exists() and not list(tmp_path.glob(".*partial"))


def test_cli_sigint_mid_run_leaves_no_output_and_no_temp_file(tiny_bundle, tmp_path):
    """Rows arrive on stdin and the pipe stays open, so the run is surely in the middle when Ctrl-C comes."""
    out = tmp_path / "out.csv"
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    process = subprocess.Popen([sys.executable, "-m", "runtime.cli", "-", "--model", str(tiny_bundle), "-o", str(out),
                                "--chunk-rows", "64"], stdin=subprocess.PIPE,
                               stderr=subprocess.PIPE, env=env, cwd=tmp_path,
                               # a test run started in the background inherits SIGINT ignored; a user's shell does not
                               preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    try:
        process.stdin.write(("text\n" + "\n".join(reviews(3000)) + "\n").encode())
        process.stdin.flush()
        deadline = time.monotonic() + 60
        while not any(p.stat().st_size > 0 for p in tmp_path.glob(".out.csv.*partial")):  # scored rows being written
            assert time.monotonic() < deadline and process.poll() is None, process.stderr.read().decode()
            time.sleep(0.05)
        time.sleep(0.5)  # the reader thread now waits for more of stdin
        process.send_signal(signal.SIGINT)
        process.wait(timeout=30)
    finally:
        if process.poll() is None:
            process.kill()
    # 130 = 128 + SIGINT (runtime.io.atomic); a hang here was the main thread waiting on results without a timeout
    assert process.returncode == 130, process.stderr.read().decode()
    assert not out.exists() and not list(tmp_path.glob(".*partial"))


def test_progress_bar_counts_input_bytes_to_the_end(tiny_bundle, tmp_path):
    """tqdm on stderr: total = compressed bytes of a .gz, reaching 100 % with every row counted;
    off when asked (and by default when stderr is not a terminal), stdout untouched either way."""
    import gzip

    source = tmp_path / "in.csv.gz"
    texts = [text or "meh" for text in reviews(3000)]  # a blank line is no row in a one-column CSV
    source.write_bytes(gzip.compress(("text\n" + "\n".join(texts) + "\n").encode()))
    runner = CliRunner()
    shown = runner.invoke(score_main, [str(source), "--model", str(tiny_bundle), "--progress", "--chunk-rows", "500"])
    assert shown.exit_code == 0, shown.output
    lines = shown.stderr.replace("\r", "\n").splitlines()
    final = [line for line in lines if "B/s" in line][-1]  # the bar's last state (the summary and notes follow)
    assert lines.index(final) < next(i for i, line in enumerate(lines) if line.startswith("scored 3,000 rows"))
    assert "100%" in final and "3,000 rows" in final and "B/s" in final, shown.stderr
    size = source.stat().st_size
    assert f"/{size / 1024:.1f}k" in final or f"/{size / 1024:.2f}k" in final or f"/{size / 1024:.0f}k" in final, final
    for flags in (["--no-progress"], []):
        quiet = runner.invoke(score_main, [str(source), "--model", str(tiny_bundle), *flags])
        assert quiet.exit_code == 0 and quiet.stderr.strip().startswith("scored 3,000 rows") and "%" not in quiet.stderr
        assert quiet.stdout == shown.stdout

    plain = tmp_path / "in.csv"  # a plain file is closed once read: the bar still ends at 100 %
    plain.write_text("text\nfine\ngood\n")
    done = runner.invoke(score_main, [str(plain), "--model", str(tiny_bundle), "--progress"])
    assert done.exit_code == 0 and "100%" in [x for x in done.stderr.replace("\r", "\n").splitlines() if "B/s" in x][-1]
    stdin = runner.invoke(score_main, ["-", "--model", str(tiny_bundle), "--progress"], "text\nfine\ngood\n")
    assert stdin.exit_code == 0 and "2 rows" in stdin.stderr.replace("\r", "\n")  # no size known: rows counted
