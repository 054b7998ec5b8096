"""Each score function against a numpy reference, with masks (incl. rows with one valid token)."""

import numpy as np
import pytest

from trainer.attention import KINDS, make_attention

B, T, H, Q, UNITS, MAX_LEN = 4, 6, 5, 5, 3, 8


def np_softmax_masked(scores, mask):
    scores = np.where(mask, scores, -np.inf)
    shifted = np.exp(scores - np.max(np.where(mask, scores, -1e30), axis=-1, keepdims=True))
    shifted = np.where(mask, shifted, 0.0)
    total = shifted.sum(-1, keepdims=True)
    return np.divide(shifted, total, out=np.zeros_like(shifted), where=total > 0)


def reference_scores(kind, layer, values, query):
    if kind == "dot":
        return np.einsum("bth,bh->bt", values, query)
    if kind == "scaled_dot":
        return np.einsum("bth,bh->bt", values, query) / np.sqrt(H)
    if kind == "general":
        w = np.asarray(layer.w)
        return np.einsum("bth,bh->bt", values, query @ w)
    if kind == "concat":
        w1, b1 = (np.asarray(v) for v in layer.w1.weights)
        w2, b2 = (np.asarray(v) for v in layer.w2.weights)
        v, bv = (np.asarray(x) for x in layer.v.weights)
        hidden = np.tanh(values @ w1 + b1 + (query @ w2 + b2)[:, None, :])
        return (hidden @ v)[..., 0] + bv[0]
    if kind == "location":
        w, b = (np.asarray(x) for x in layer.w.weights)
        return (query @ w + b)[:, :T]
    raise AssertionError(kind)


@pytest.mark.parametrize("kind", KINDS)
def test_matches_numpy_reference(kind):
    rng = np.random.default_rng(3)
    values = rng.normal(size=(B, T, H)).astype("float32")
    query = rng.normal(size=(B, Q)).astype("float32")
    lengths = np.array([6, 3, 1, 0])  # full, short, one valid token, none
    mask = np.arange(T)[None, :] < lengths[:, None]
    layer = make_attention(kind, units=UNITS, max_len=MAX_LEN)
    context, weights = (np.asarray(x) for x in layer(values, query, mask))

    expected_weights = np_softmax_masked(reference_scores(kind, layer, values, query), mask)
    np.testing.assert_allclose(weights, expected_weights, atol=1e-6)
    np.testing.assert_allclose(context, np.einsum("bt,bth->bh", expected_weights, values), atol=1e-5)
    assert np.all(weights[~mask] == 0.0)  # exactly zero on padding
    np.testing.assert_allclose(weights[:3].sum(-1), 1.0, atol=1e-6)
    assert weights[2, 0] == pytest.approx(1.0)  # the one valid token takes all the weight
    assert np.all(weights[3] == 0.0) and np.all(context[3] == 0.0)  # no valid token: zeros, not NaN


def test_unknown_kind_is_refused():
    with pytest.raises(ValueError, match="unknown attention kind 'cosine'"):
        make_attention("cosine")
