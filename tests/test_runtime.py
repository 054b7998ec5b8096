"""runtime: the Python API and attn-score, against Keras and on bad inputs."""

import csv
import gzip
import io
import json
import os
import subprocess
import sys
import threading
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

import runtime
from runtime.cli import main as score_cli
from runtime.models.classifier import token_budget_batches
from trainer.fit import predict_probabilities

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def classifier(tiny_bundle):
    return runtime.load(tiny_bundle, provider="cpu")


@pytest.fixture(scope="module")
def test_slice(imdb_test):
    order = np.random.default_rng(1).permutation(len(imdb_test))[:2000]
    return imdb_test.take(order)


def score(args, input_text=None):
    return CliRunner().invoke(score_cli, args, input=input_text)


# === API ===
def test_probabilities_match_keras(classifier, tiny_result, test_slice):
    texts = test_slice.texts + ["", "   ", "a"]
    expected = predict_probabilities(tiny_result.model, tiny_result.tokenizer, texts)
    got = classifier.predict(texts)
    assert got.shape == (len(texts),) and got.dtype == np.float32
    assert np.max(np.abs(got - expected)) <= 1e-5


def test_batching_budget_does_not_change_results(tiny_bundle, test_slice):
    texts = test_slice.texts[:300]
    small = runtime.load(tiny_bundle, provider="cpu", batch_tokens=50).predict(texts)
    large = runtime.load(tiny_bundle, provider="cpu", batch_tokens=10**6).predict(texts)
    np.testing.assert_allclose(small, large, atol=1e-6)


def test_token_budget_batches_cover_each_row_once_within_budget():
    lengths = np.random.default_rng(0).integers(0, 300, size=500)
    batches = token_budget_batches(lengths, 1000)
    rows = np.concatenate(batches)
    assert sorted(rows.tolist()) == list(range(500))
    for batch in batches:
        assert len(batch) == 1 or len(batch) * max(lengths[batch].max(), 1) <= 1000


def test_labels_and_explain(classifier, test_slice):
    texts = test_slice.texts[:20]
    probabilities = classifier.predict(texts)
    labels = classifier.predict_labels(texts, threshold=0.5)
    assert labels == [("positive" if p >= 0.5 else "negative") for p in probabilities]
    explanations = classifier.explain(texts, top_k=3)
    for text, top in zip(texts, explanations):
        tokens = classifier.tokenizer.tokenize(text)
        assert len(top) == min(3, len(tokens))
        weights = [w for _, w in top]
        assert weights == sorted(weights, reverse=True)
        assert all(token in tokens for token, _ in top)
    assert classifier.explain([""], top_k=3) == [[]]


def test_thread_safe(classifier, test_slice):
    texts = test_slice.texts[:200]
    expected = classifier.predict(texts)
    results = [None] * 4

    def work(i):
        results[i] = classifier.predict(texts)

    threads = [threading.Thread(target=work, args=(i,)) for i in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    for got in results:
        np.testing.assert_array_equal(got, expected)


def test_explicit_unavailable_provider_is_an_error(tiny_bundle):
    missing = next(p for p in ("tensorrt", "coreml", "dml", "openvino", "cuda")
                   if p not in runtime.available_providers())
    with pytest.raises(runtime.ProviderError, match=f"provider '{missing}' is not available.*available: .*cpu"):
        runtime.load(tiny_bundle, provider=missing)


def test_wrong_task_bundle(tiny_bundle, tmp_path):
    import shutil

    copy = tmp_path / "b"
    shutil.copytree(tiny_bundle, copy)
    manifest = json.loads((copy / "manifest.json").read_text())
    manifest["task"] = "parsing"
    (copy / "manifest.json").write_text(json.dumps(manifest))
    with pytest.raises(runtime.BundleError, match="unknown task 'parsing'"):
        runtime.load(copy)


def test_runtime_runs_without_tensorflow(tiny_bundle, tmp_path):
    """A subprocess where importing tensorflow/keras/tf2onnx fails outright."""
    blocker = tmp_path / "block"
    blocker.mkdir()
    for name in ("tensorflow", "keras", "tf2onnx"):
        (blocker / f"{name}.py").write_text(f"raise ImportError('{name} is blocked in this test')\n")
    code = (
        "import sys, runtime, runtime.cli; "
        f"print(runtime.load({str(tiny_bundle)!r}).predict(['a fine film']).shape); "
        "assert not any(m.split('.')[0] in ('tensorflow', 'keras', 'trainer') for m in sys.modules)"
    )
    env = {**os.environ, "PYTHONPATH": f"{blocker}{os.pathsep}{REPO}"}
    done = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    assert "(1,)" in done.stdout


# === attn-score ===
def read_csv(text):
    return list(csv.DictReader(io.StringIO(text)))


def test_cli_keeps_every_row_in_order(tiny_bundle, classifier, test_slice, tmp_path):
    source = tmp_path / "reviews.csv"
    with open(source, "w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(["id", "text"])
        ids = [f"r{i}" for i in range(len(test_slice))]
        texts = list(test_slice.texts)
        texts[5] = ""  # empty texts are scored, never dropped
        texts[7] = "   "
        writer.writerows(zip(ids, texts))
    out = tmp_path / "scores.csv"
    result = score([str(source), "--model", str(tiny_bundle), "-o", str(out)])
    assert result.exit_code == 0, result.output
    assert "scored 2,000 rows" in result.output and "rows/s" in result.output
    rows = read_csv(out.read_text())
    assert [r["id"] for r in rows] == ids
    expected = classifier.predict(texts)  # a number for every row; the output leaves it out where the status is not ok
    assert ([r["status"] for r in rows][5:8] == ["empty", "ok", "empty"]
            and rows[5]["probability"] == rows[7]["probability"] == "")
    np.testing.assert_allclose([float(r["probability"] or expected[i]) for i, r in enumerate(rows)], expected,
                               atol=1e-6)
    assert not list(tmp_path.glob(".*partial"))


def test_cli_stdin_gz_jsonl_and_explain(tiny_bundle, tmp_path):
    rows = score(["-", "--model", str(tiny_bundle)], "text\nloved it\nhated it\n")
    assert rows.exit_code == 0
    parsed = read_csv(rows.stdout)
    assert [r["id"] for r in parsed] == ["1", "2"] and {r["label"] for r in parsed} <= {"negative", "positive"}

    gz = tmp_path / "in.tsv.gz"
    gz.write_bytes(gzip.compress('id\tdocument\n7\tsaid "wow" twice\n8\t\n'.encode()))
    result = score([str(gz), "--model", str(tiny_bundle), "--text-column", "document",
                    "--format", "jsonl", "--explain", "2"])
    assert result.exit_code == 0, result.output
    records = [json.loads(line) for line in result.stdout.splitlines()]
    assert [r["id"] for r in records] == ["7", "8"]
    assert {e["token"] for e in records[0]["explanation"]} <= {"said", "wow", "twice"}
    assert records[1]["explanation"] == []

    jsonl = tmp_path / "in.jsonl"
    jsonl.write_text('{"id": 1, "text": "fine"}\n{"id": 2, "text": null}\n')
    result = score([str(jsonl), "--model", str(tiny_bundle)])
    assert result.exit_code == 0 and [r["id"] for r in read_csv(result.stdout)] == ["1", "2"]



def test_cli_single_column_input_never_swallows_a_text_as_header(tiny_bundle):
    """The one-column rule: line 1 is a header only when it is the text column's name; otherwise
    every line is a text (stdin or a one-column CSV), so no text is ever lost as a header."""
    named = score(["-", "--model", str(tiny_bundle)], "text\nloved it\nhated it\n")
    assert named.exit_code == 0 and len(read_csv(named.stdout)) == 2
    for header_less in ("loved it\nhated it\n", "great\nawful\n", "정말 재밌어요 최고의 영화\n진짜 최악\n"):
        lines = score(["-", "--model", str(tiny_bundle)], header_less)
        assert lines.exit_code == 0 and [r["id"] for r in read_csv(lines.stdout)] == ["1", "2"]
    review = score(["-", "--model", str(tiny_bundle), "--text-column", "review"], "review\nloved it\nhated it\n")
    assert review.exit_code == 0 and len(read_csv(review.stdout)) == 2


BAD_INPUTS = {
    "missing file": (None, "nope.csv: no such file"),
    "empty file": (b"", "file is empty"),
    "header only": (b"id,text\n", "no data rows"),
    "missing text column": (b"id,review\n1,x\n", "no column 'text'; the columns are: 'id', 'review'"),
    "undecodable bytes": (b"id,text\n1,fine\n2,caf\xe9\n",
                          "line 3: byte 0xe9 at column 6 is not valid utf-8; pass --encoding"),
    "malformed quoting": (b'id,text\n1,"unclosed\n2,x\n', "malformed CSV"),
    "ragged row": (b"id,text\n1,a,b\n", "line 2: expected 2 fields, found 3"),
}


@pytest.mark.parametrize("case", BAD_INPUTS)
def test_cli_bad_input_one_line_error_and_no_output_file(case, tiny_bundle, tmp_path):
    content, message = BAD_INPUTS[case]
    source = tmp_path / ("nope.csv" if content is None else "in.csv")
    if content is not None:
        source.write_bytes(content)
    out = tmp_path / "out.csv"
    result = score([str(source), "--model", str(tiny_bundle), "-o", str(out)])
    assert result.exit_code == 1
    assert message in result.output
    assert len(result.output.strip().splitlines()) == 1 and "Traceback" not in result.output
    assert not out.exists() and not list(tmp_path.glob(".*partial"))


def test_cli_encoding_option_fixes_latin1(tiny_bundle, tmp_path):
    source = tmp_path / "in.csv"
    source.write_bytes(b"id,text\n1,caf\xe9\n")
    assert score([str(source), "--model", str(tiny_bundle), "--encoding", "latin-1"]).exit_code == 0


@pytest.mark.parametrize("problem", ["tampered", "not a bundle"])
def test_cli_bad_bundle(problem, tiny_bundle, tmp_path):
    import shutil

    bundle = tmp_path / "b"
    if problem == "tampered":
        shutil.copytree(tiny_bundle, bundle)
        (bundle / "model.onnx").write_bytes((bundle / "model.onnx").read_bytes()[:-10])
    else:
        bundle.mkdir()
    source = tmp_path / "in.csv"
    source.write_text("text\nx\n")
    result = score([str(source), "--model", str(bundle)])
    assert result.exit_code == 1 and len(result.output.strip().splitlines()) == 1
    assert ("sha256 does not match" if problem == "tampered" else "not a bundle") in result.output


def test_cli_real_subprocess(tiny_bundle, tmp_path):
    source = tmp_path / "in.csv"
    source.write_text("id,text\na,great film\nb,dreadful\n")
    done = subprocess.run([sys.executable, "-m", "runtime.cli", str(source), "--model", str(tiny_bundle)],
                          capture_output=True, text=True, cwd=REPO)
    assert done.returncode == 0, done.stderr
    assert [r["id"] for r in read_csv(done.stdout)] == ["a", "b"]
    assert "scored 2 rows" in done.stderr
    missing = subprocess.run([sys.executable, "-m", "runtime.cli", str(tmp_path / "x.csv"),
                              "--model", str(tiny_bundle)],
                             capture_output=True, text=True, cwd=REPO)
    assert missing.returncode == 1 and missing.stderr.strip() == f"Error: {tmp_path / 'x.csv'}: no such file"
