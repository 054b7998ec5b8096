"""The text graph (trainer/text_graph.py, model_text.onnx): the tokenizer compiled from ONNX Runtime's
built-in ops in front of the token graph. The compiled tokenizer's conformance to runtime/tokenizer.py
is tests/test_tokenizer_graph.py (its own file, so the two halves run on two workers). Parity: the text
graph's probability and attention equal the token graph fed by the Python tokenizer within 1e-6, fp32
and int8, on 1,000 IMDB test reviews.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from dataclasses import replace
from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort
import pytest

from runtime.bundle import Bundle, BundleError
from runtime.tokenizer import Tokenizer
from trainer.text_graph import (
    FILE,
    MAX_IR_VERSION,
    add_text_graph,
    build_text_graph,
    check_text_parity,
)
from web_corpus import (
    ADVERSARIAL,
    negation_strings,
)

REPO = Path(__file__).resolve().parents[1]
SHIPPED = REPO / "artifacts" / "imdb-bilstm-attention"


def test_a_join_clitics_bundle_is_refused_with_one_line(tmp_path):
    """A bundle whose tokenizer joins clitics (the English default before 2026-12-01): attn-export text-graph
    refuses it and writes nothing."""
    bundle = tmp_path / "imdb"
    shutil.copytree(SHIPPED, bundle, ignore=shutil.ignore_patterns("training", FILE))
    manifest = json.loads((bundle / "manifest.json").read_text(encoding="utf-8"))
    manifest["tokenizer"]["spec"] |= {"join_clitics": True, "lowercase_mapping": "full"}
    manifest["graphs"].pop("text")
    (bundle / "manifest.json").write_text(json.dumps(manifest), encoding="utf-8")
    before = (bundle / "manifest.json").read_bytes()
    command = [sys.executable, "-m", "trainer.cli", "text-graph", str(bundle), "--lowercase-mapping", "simple"]
    done = subprocess.run(command, capture_output=True, text=True, cwd=REPO, timeout=300)
    assert done.returncode == 1
    error = [line for line in done.stderr.splitlines() if line.startswith("Error:")]
    assert len(error) == 1 and "join_clitics" in error[0], done.stderr
    assert "Traceback" not in done.stderr
    assert not (bundle / FILE).exists() and (bundle / "manifest.json").read_bytes() == before


# === Parity ===
@pytest.fixture(scope="module")
def review_texts(imdb_test):
    order = np.random.default_rng(34).permutation(len(imdb_test.texts))[:1000]
    return [imdb_test.texts[i] for i in order]


def test_text_bundle_declares_and_checksums_its_text_graph(text_bundle):
    bundle = Bundle.load(text_bundle)
    graph = bundle.manifest["graphs"]["text"]
    assert graph["file"] == FILE and len(graph["sha256"]) == 64
    assert bundle.manifest["tokenizer"]["spec"]["lowercase_mapping"] == "simple"
    assert bundle.manifest["parity"]["text"]["max_abs_probability"] <= 1e-6
    session, _ = bundle.open_session("text", provider="cpu")  # checked against the contract
    assert [i.name for i in session.get_inputs()] == ["text"]
    proto = onnx.load(str(text_bundle / FILE))
    assert proto.ir_version <= MAX_IR_VERSION
    ops = {node.op_type for node in proto.graph.node}
    assert {"StringNormalizer", "Tokenizer", "LabelEncoder", "LSTM"} <= ops and not ops & {"Loop", "Scan"}


def test_a_changed_or_missing_text_graph_is_refused_when_opened(text_bundle, tmp_path):
    """The text graph is optional: checked (sha256) when opened; a copy without it still scores tokens."""
    bundle = tmp_path / "bundle"
    shutil.copytree(text_bundle, bundle)
    data = bytearray((bundle / FILE).read_bytes())
    data[-1] ^= 1
    (bundle / FILE).write_bytes(bytes(data))
    with pytest.raises(BundleError, match="sha256"):
        Bundle.load(bundle).open_session("text", provider="cpu")
    (bundle / FILE).unlink()
    loaded = Bundle.load(bundle)
    loaded.open_session("model", provider="cpu")
    with pytest.raises(BundleError, match="missing"):
        loaded.open_session("text", provider="cpu")


def test_bundles_without_a_text_graph_still_load(tiny_bundle):
    assert "text" not in Bundle.load(tiny_bundle).manifest["graphs"]
    assert Tokenizer.from_dict(Bundle.load(tiny_bundle).manifest["tokenizer"]).spec.lowercase_mapping == "full"


@pytest.mark.slow
def test_text_graph_equals_token_graph_on_1000_reviews(text_bundle, review_texts):
    bundle = Bundle.load(text_bundle)
    figures = check_text_parity(bundle.graph_bytes("text"), bundle.graph_bytes("model"), bundle.tokenizer, review_texts)
    assert figures["rows"] == 1000 and figures["max_abs_probability"] <= 1e-6 and figures["max_abs_attention"] <= 1e-6


@pytest.mark.slow
def test_int8_bundle_gets_a_text_graph_with_parity(text_bundle, review_texts, tmp_path):
    """A dynamic-quantized model.onnx (DynamicQuantizeLSTM, MatMulInteger) composes the same way; the
    same ids enter the same int8 graph, so parity holds to 1e-6 there too (same CPU, same batches)."""
    from runtime.bundle import sha256_of
    from trainer.export import quantize_int8

    bundle = tmp_path / "int8"
    shutil.copytree(text_bundle, bundle)
    (bundle / FILE).unlink()
    quantize_int8(text_bundle / "model.onnx", bundle / "model.onnx")
    manifest = json.loads((bundle / "manifest.json").read_text(encoding="utf-8"))
    del manifest["graphs"]["text"]
    manifest["graphs"]["model"]["sha256"], manifest["precision"] = sha256_of(bundle / "model.onnx"), "int8"
    (bundle / "manifest.json").write_text(json.dumps(manifest), encoding="utf-8")
    add_text_graph(bundle, texts=review_texts[:300], log=lambda _: None)
    assert "DynamicQuantizeLSTM" in {node.op_type for node in onnx.load(str(bundle / FILE)).graph.node}


def test_parity_gate_fails_when_the_graph_tokenizes_otherwise(text_bundle):
    """The gate can fail: a text graph built with another truncation side than the bundle's."""
    bundle = Bundle.load(text_bundle)
    other = Tokenizer(replace(bundle.tokenizer.spec, truncation="post"), bundle.tokenizer.vocab)
    wrong = build_text_graph(onnx.load_from_string(bundle.graph_bytes("model")), other).SerializeToString()
    long = " ".join(bundle.tokenizer.vocab[:bundle.tokenizer.spec.max_len + 20])
    with pytest.raises(Exception, match="tokens of text 1 differ"):
        check_text_parity(wrong, bundle.graph_bytes("model"), bundle.tokenizer, [long])


# === Hosts: the .ort format, Node (onnxruntime-node), the web library ===
def _python_reference(bundle_dir: Path, texts: list[str]):
    """Probability and per-row attention of the token graph fed by runtime.tokenizer."""
    import runtime

    return runtime.load(str(bundle_dir), provider="cpu")._score(texts, want_attention=True)


def _max_gap(a, b) -> float:
    return max((float(np.abs(np.asarray(x) - y).max()) if len(y) else 0.0 for x, y in zip(a, b)), default=0.0)


@pytest.mark.slow
def test_attn_export_ort_writes_a_mobile_graph_with_parity(text_bundle, review_texts, tmp_path):
    bundle = tmp_path / "bundle"
    shutil.copytree(text_bundle, bundle)
    done = subprocess.run([sys.executable, "-m", "trainer.cli", "ort", str(bundle)], capture_output=True, text=True,
                          cwd=REPO, timeout=600)
    assert done.returncode == 0, done.stderr
    operators = (bundle / "required_operators.config").read_text()
    assert "Tokenizer" in operators and "LabelEncoder" in operators and "StringNormalizer" in operators
    record = Bundle.load(bundle).manifest["ort_format"]
    assert record["bytes"] == (bundle / "model_text.ort").stat().st_size
    assert record["parity"]["max_abs_probability"] <= 1e-6
    session = ort.InferenceSession(str(bundle / "model_text.ort"), providers=["CPUExecutionProvider"])
    texts = review_texts[:200]
    probability, attention, tokens, lengths = session.run(None, {"text": np.array(texts, dtype=object)})
    expected_p, expected_a = _python_reference(bundle, texts)
    tokenizer = Bundle.load(bundle).tokenizer
    assert [row[:n].tolist() for row, n in zip(tokens, lengths)] == [tokenizer.tokenize(t) for t in texts]
    assert float(np.abs(probability - expected_p).max()) <= 1e-6
    assert _max_gap([row[:n] for row, n in zip(attention, lengths)], expected_a) <= 1e-6


def _node(*args: str, cwd: Path) -> subprocess.CompletedProcess:
    if not shutil.which("node"):
        pytest.fail("these tests need Node.js (node): run scripts/setup-test-env", pytrace=False)
    return subprocess.run(["node", *args], capture_output=True, text=True, timeout=600, cwd=cwd)


def test_node_example_scores_a_file_of_lines(text_bundle, review_texts, tmp_path):
    """examples/node/score.js with onnxruntime-node (its bundled native CPU build), against Python."""
    example = REPO / "examples" / "node"
    if not (example / "node_modules" / "onnxruntime-node" / "package.json").is_file():
        pytest.fail("examples/node/node_modules is missing: run scripts/setup-test-env", pytrace=False)
    texts = [" ".join(text.split()) for text in review_texts[:100]] + ["", "A wonderful, moving film.<br />Loved it"]
    lines = tmp_path / "lines.txt"
    lines.write_text("\n".join(texts) + "\n", encoding="utf-8")
    done = _node("score.js", str(text_bundle), str(lines), cwd=example)
    assert done.returncode == 0, done.stderr
    rows = [json.loads(line) for line in done.stdout.splitlines()]
    assert [row["line"] for row in rows] == list(range(1, len(texts) + 1))
    expected_p, expected_a = _python_reference(text_bundle, texts)
    assert float(np.abs(np.array([row["probability"] for row in rows]) - expected_p).max()) <= 1e-5
    tokenizer = Bundle.load(text_bundle).tokenizer
    for row, text, weights in zip(rows, texts, expected_a):
        tokens = tokenizer.tokenize(text)
        top = sorted(zip(tokens, weights.tolist()), key=lambda pair: -pair[1])[:3]
        assert [weight for _, weight in row["top"]] == pytest.approx([weight for _, weight in top], abs=1e-5)


@pytest.mark.parametrize("which", ["text_bundle", "negating_text_bundle"])
def test_web_library_scores_with_the_text_graph_under_node(which, request, review_texts, tmp_path):
    """web/src (onnxruntime-web WASM) with model_text.onnx: the graph tokenizes, not the JS tokenizer;
    also with the compiled negation split (its string ops in WASM)."""
    text_bundle = request.getfixturevalue(which)
    texts = review_texts[:100] + [text for _, text in ADVERSARIAL][:30] + negation_strings(3)
    (tmp_path / "texts.json").write_text(json.dumps(texts), encoding="utf-8")
    out = tmp_path / "out.json"
    forced = '{"force": true}'  # the model's numbers also where the status is not ok (test_screening checks statuses)
    done = _node("web/test/parity.mjs", str(text_bundle), str(tmp_path / "texts.json"), str(out), "text", forced,
                 cwd=REPO)
    assert done.returncode == 0, done.stderr
    results = json.loads((tmp_path / "out.json").read_text(encoding="utf-8"))
    tokenizer = Bundle.load(text_bundle).tokenizer
    assert [r["tokens"] for r in results] == [tokenizer.tokenize(t) for t in texts]
    expected_p, expected_a = _python_reference(text_bundle, texts)
    assert float(np.abs(np.array([r["probability"] for r in results]) - expected_p).max()) <= 1e-5
    assert _max_gap([r["attention"] for r in results], expected_a) <= 1e-5


_LOAD_IN_PAGE = """
const [bundle, texts, done] = arguments;
(async () => {
  const { loadBundle } = await import(new URL("/web/src/index.js", location.href).href);
  const model = await loadBundle(new URL(bundle, location.href));
  const results = await model.classify(texts, {force: true});
  done({graph: model.graph, jsTokenizer: model.tokenizer !== null, results});
})().catch((error) => done({error: String(error)}));
"""


@pytest.mark.parametrize("which", ["text_bundle", "negating_text_bundle"])
def test_chromium_web_library_uses_the_text_graph(which, request, chromium, serve, review_texts, tmp_path):
    """In headless Chromium, loadBundle picks model_text.onnx when the manifest declares it and scores
    as Python does (tokens exactly, outputs within 1e-5), the compiled negation split included."""
    text_bundle = request.getfixturevalue(which)
    site = tmp_path / "site"
    site.mkdir()
    (site / "web").symlink_to(REPO / "web")
    (site / "bundle").symlink_to(text_bundle)
    texts = review_texts[:50] + ["", "İstanbul ΟΔΟΣ <BR>Great!", "I DIDN’T hate it<br>n't've, shouldn't've"]
    chromium.get(serve(site) + "web/demo/")
    page = chromium.execute_async_script(_LOAD_IN_PAGE, "/bundle/", texts)
    assert "error" not in page, page
    assert page["graph"] == "text" and not page["jsTokenizer"]
    tokenizer = Bundle.load(text_bundle).tokenizer
    assert [r["tokens"] for r in page["results"]] == [tokenizer.tokenize(t) for t in texts]
    expected_p, expected_a = _python_reference(text_bundle, texts)
    assert float(np.abs(np.array([r["probability"] for r in page["results"]]) - expected_p).max()) <= 1e-5
    assert _max_gap([r["attention"] for r in page["results"]], expected_a) <= 1e-5


@pytest.mark.slow
@pytest.mark.parametrize("name", ["imdb-bilstm-attention", "imdb-bilstm-attention-int8"])
def test_shipped_english_bundles_carry_a_text_graph_with_parity(name, review_texts):
    """The English default (and its int8) ship model_text.onnx: checksummed, simple lowercase mapping, and on
    1,000 IMDB test reviews its probability and attention equal model.onnx fed by the Python tokenizer. The
    same ids meet the same kernels in one process here, so the int8 graph is held to the fp32 bound too."""
    bundle = Bundle.load(REPO / "artifacts" / name, verify=True)
    assert bundle.manifest["graphs"]["text"]["file"] == FILE
    assert bundle.tokenizer.spec.lowercase_mapping == "simple" and not bundle.tokenizer.spec.join_clitics
    figures = check_text_parity(bundle.graph_bytes("text"), bundle.graph_bytes("model"), bundle.tokenizer, review_texts)
    assert figures["rows"] == 1000 and figures["max_abs_probability"] <= 1e-6 and figures["max_abs_attention"] <= 1e-6
