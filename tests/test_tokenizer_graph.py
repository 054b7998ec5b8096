"""The tokenizer compiled from ONNX Runtime's built-in ops (trainer/text_graph.py's
`build_tokenizer_graph`, the front of model_text.onnx) against runtime/tokenizer.py.

Conformance: the compiled tokenizer gives exactly runtime/tokenizer.py's tokens and ids on the 25,000
IMDB test reviews, the adversarial set (tests/web_corpus.py) and every code point, under each spec
that compiles; refusals name the feature. The text graph as a bundle's part (parity, int8, the other
hosts) is tests/test_text_graph.py.
"""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import numpy as np
import onnxruntime as ort
import pytest

from runtime.models.classifier import token_budget_batches
from runtime.tokenizer import Tokenizer, TokenizerSpec
from trainer.text_graph import (
    TextGraphError,
    build_tokenizer_graph,
    refusal,
)
from web_corpus import (
    ADVERSARIAL,
    clitic_case_texts,
    code_point_texts,
    negation_neighbour_texts,
    negation_strings,
)

REPO = Path(__file__).resolve().parents[1]
SHIPPED = REPO / "artifacts" / "imdb-bilstm-attention"
BASE = TokenizerSpec(max_len=500, lowercase=True, html_breaks=True, punctuation="strip", truncation="pre",
                     lowercase_mapping="simple")  # the new English default's spec
COMPILABLE = [  # every branch of the compiled tokenizer
    BASE,
    replace(BASE, truncation="post"),
    replace(BASE, punctuation="keep"),
    replace(BASE, lowercase=False, html_breaks=False),
    replace(BASE, lowercase=False, punctuation="keep", truncation="post", max_len=300),
    replace(BASE, lowercase=False, lowercase_mapping="full"),  # the mapping is moot without lowercasing
    replace(BASE, split_negation=True),
    replace(BASE, split_negation=True, lowercase=False, html_breaks=False, truncation="post", max_len=300),
    replace(BASE, split_negation=True, negation_as_not=True),  # only the lookup differs: "n't" -> "not"'s id
]
NEGATING = [spec for spec in COMPILABLE if spec.split_negation and not spec.negation_as_not]


@pytest.fixture(scope="module")
def vocab():
    return Tokenizer.from_dict(json.loads((SHIPPED / "manifest.json").read_text(encoding="utf-8"))["tokenizer"]).vocab


def assert_conforms(tokenizer: Tokenizer, texts: list[str], what: str) -> None:
    """The compiled tokenizer against runtime.tokenizer: fails on the first text that differs."""
    graph = build_tokenizer_graph(tokenizer).SerializeToString()
    session = ort.InferenceSession(graph, providers=["CPUExecutionProvider"])
    # rows sorted by length, cut at 200,000 characters x rows (the runtime's own batching, on characters)
    for rows in token_budget_batches(np.array([len(t) for t in texts]), 200_000):
        batch = [texts[i] for i in rows]
        ids, tokens, lengths = session.run(["ids", "tokens", "lengths"], {"text": np.array(batch, dtype=object)})
        longest = 1  # the graph pads to the batch's longest row, and to one column for a batch of empty rows
        for i, text in enumerate(batch):
            expected = tokenizer.tokenize(text)
            longest = max(longest, len(expected))
            got = tokens[i, : lengths[i]].tolist()
            expected_ids = [tokenizer.id_of(token) for token in expected]
            if got != expected or ids[i, : lengths[i]].tolist() != expected_ids or ids[i, lengths[i]:].any():
                pytest.fail(f"{what}, {tokenizer.spec}: text {rows[i] + 1} differs: {text[:300]!r}\n"
                            f"graph  {got[:30]}\npython {expected[:30]}", pytrace=False)
        assert ids.shape[1] == longest


@pytest.mark.slow
@pytest.mark.parametrize("spec", [BASE, replace(BASE, split_negation=True)], ids=["base", "negating"])
def test_compiled_tokenizer_equals_python_on_25000_imdb_reviews(spec, imdb_test, vocab):
    assert_conforms(Tokenizer(spec, vocab), list(imdb_test.texts), "IMDB test")


@pytest.mark.parametrize("spec", COMPILABLE, ids=[f"spec{i}" for i in range(len(COMPILABLE))])
def test_compiled_tokenizer_equals_python_on_adversarial_texts_and_every_code_point(spec, vocab):
    """Every code point but the surrogates (which UTF-8 cannot carry), 256 to a text, and the
    hand-written adversarial set (breaks, apostrophes, sigma, İ, scripts, a 1 MB text)."""
    tokenizer = Tokenizer(spec, vocab)
    assert_conforms(tokenizer, [text for _, text in ADVERSARIAL], "adversarial")
    assert_conforms(tokenizer, [text for _, text in code_point_texts()], "code points")


@pytest.mark.slow
@pytest.mark.parametrize("spec", NEGATING, ids=[f"negating{i}" for i in range(len(NEGATING))])
def test_compiled_negation_split_equals_python_on_every_short_string_and_beside_every_code_point(spec, vocab):
    """split_negation compiled (two find-all passes, no regex replace) against runtime.tokenizer's
    `_NEGATION.sub`: every string of up to five symbols (177,156), every seventh of them between words
    too, "n't" beside every code point of the BMP, and the clitic case folds."""
    tokenizer = Tokenizer(spec, [t for t in vocab if t not in ("n't", "do", "ca")] + ["n't", "do", "ca"])
    short = negation_strings()
    assert_conforms(tokenizer, short, "short strings")
    assert_conforms(tokenizer, [f"I{text}didn't{text}x" for text in short[::7]], "short strings inside words")
    assert_conforms(tokenizer, [text for _, text in negation_neighbour_texts()], "n't beside every code point")
    assert_conforms(tokenizer, [text for _, text in clitic_case_texts()], "clitic case folds")


def test_compiled_negation_split_cuts_n_t_off_as_python_does(vocab):
    """Hand-picked cases of the lookarounds, each as runtime/tokenizer.py splits it."""
    tokenizer = Tokenizer(replace(BASE, split_negation=True), vocab)
    session = ort.InferenceSession(build_tokenizer_graph(tokenizer).SerializeToString())
    texts = ["I didn't like it.", "It wasn’t bad<br />n't've", "Shouldn't've", "x'n't -n’t", "don'tx"]
    tokens, lengths = session.run(["tokens", "lengths"], {"text": np.array(texts, dtype=object)})
    got = [tokens[i, : lengths[i]].tolist() for i in range(len(texts))]
    assert got == [tokenizer.tokenize(text) for text in texts] == [
        ["i", "did", "n't", "like", "it"], ["it", "was", "n't", "bad", "n't", "ve"], ["should", "n't", "ve"],
        ["x'n't", "n", "t"], ["don'tx"]]


def test_compiled_lookup_reads_n_t_as_not_under_negation_as_not(vocab):
    """negation_as_not: the graph shows "n't" as written and gives it the id of "not", as Python does;
    without it "n't" keeps its own id."""
    texts = ["I didn't hate it.", "I did not hate it."]
    got = {}
    for as_not in (False, True):
        tokenizer = Tokenizer(replace(BASE, split_negation=True, negation_as_not=as_not), vocab)
        session = ort.InferenceSession(build_tokenizer_graph(tokenizer).SerializeToString())
        ids, tokens, lengths = session.run(["ids", "tokens", "lengths"], {"text": np.array(texts, dtype=object)})
        assert tokens[0, : lengths[0]].tolist() == ["i", "did", "n't", "hate", "it"]
        assert ids.tolist() == tokenizer.encode(texts)[0].tolist()
        got[as_not] = ids
    assert "n't" in vocab and got[False][0, 2] == vocab.index("n't") + 2 != got[False][1, 2]
    assert got[True][0].tolist() == got[True][1].tolist()  # "didn't" reads exactly as "did not"


def test_a_difference_is_reported_with_its_text(vocab):
    """The conformance check can fail: a tokenizer whose Python side lowercases fully ("İ" -> "i̇")
    against the graph compiled from the simple mapping."""
    simple, full = Tokenizer(BASE, vocab), Tokenizer(replace(BASE, lowercase_mapping="full"), vocab)
    full_session_tokenizer = build_tokenizer_graph(simple)
    session = ort.InferenceSession(full_session_tokenizer.SerializeToString())
    tokens, lengths = session.run(["tokens", "lengths"], {"text": np.array(["İstanbul ΟΔΟΣ"], dtype=object)})
    assert tokens[0, : lengths[0]].tolist() == simple.tokenize("İstanbul ΟΔΟΣ") == ["istanbul", "οδοσ"]
    assert full.tokenize("İstanbul ΟΔΟΣ") == ["i", "stanbul", "οδος"]


@pytest.mark.parametrize("spec, feature", [
    (replace(BASE, join_clitics=True), "join_clitics"),
    (replace(BASE, split_negation=True, punctuation="keep"), "split_negation"),
    (replace(BASE, lowercase_mapping="full"), "lowercase_mapping 'full'"),
    (replace(BASE, mode="sentencepiece"), "mode 'sentencepiece'"),
])
def test_specs_that_do_not_compile_are_refused_naming_the_feature(spec, feature, vocab):
    reason = refusal(spec)
    assert reason and feature in reason and "\n" not in reason
    if spec.mode == "word":
        with pytest.raises(TextGraphError, match=feature):
            build_tokenizer_graph(Tokenizer(spec, vocab))


def test_every_compilable_spec_is_accepted():
    assert all(refusal(spec) is None for spec in COMPILABLE)
