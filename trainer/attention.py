"""Attention score functions as Keras layers with explicit masks.

Every layer is called as `layer(values, query, mask)` with
    values (B, T, H)  the states attended over (hᵢ)
    query  (B, Q)     what asks (s)
    mask   (B, T)     True where a position holds a real token
and returns `(context (B, H), weights (B, T))`. Masked positions get weight exactly 0 and the
weights of a row's valid positions sum to 1; a row with no valid position gets all-zero weights and
a zero context (never NaN).

Only `keras.ops` is used, so the layers run on any Keras backend and export through tf2onnx.
"""

from __future__ import annotations

import math

import keras
from keras import ops

from trainer.config import KINDS

_NEG = -1e9  # exp(-1e9 - max) underflows to exactly 0 in float32


def masked_softmax(scores, mask):
    """softmax over the valid positions of each row; masked positions exactly 0."""
    mask = ops.cast(mask, "bool")
    weights = ops.softmax(ops.where(mask, scores, _NEG), axis=-1)  # (B, T)
    return ops.where(mask, weights, 0.0)


class Attention(keras.layers.Layer):
    """Base: subclasses define `score(values, query) -> (B, T)`."""

    kind = ""

    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        self.supports_masking = True  # the mask is an explicit argument; nothing propagates

    def compute_mask(self, values, query, mask=None):
        return [None, None]

    def call(self, values, query, mask):
        weights = masked_softmax(self.score(values, query), mask)  # (B, T)
        context = ops.squeeze(ops.matmul(ops.expand_dims(weights, 1), values), 1)  # (B, H)
        return context, weights

    def score(self, values, query):
        raise NotImplementedError


def _dot(values, query):
    return ops.squeeze(ops.matmul(values, ops.expand_dims(query, -1)), -1)  # (B, T)


@keras.saving.register_keras_serializable(package="attn")
class DotAttention(Attention):
    """sᵀh (Luong dot). Needs Q == H."""

    kind = "dot"

    def score(self, values, query):
        return _dot(values, query)


@keras.saving.register_keras_serializable(package="attn")
class ScaledDotAttention(Attention):
    """sᵀh / √n with n = H (Vaswani et al.)."""

    kind = "scaled_dot"

    def score(self, values, query):
        return _dot(values, query) / math.sqrt(values.shape[-1])


@keras.saving.register_keras_serializable(package="attn")
class GeneralAttention(Attention):
    """sᵀ W h (Luong general): the query is projected into the values' space."""

    kind = "general"

    def build(self, values_shape, query_shape, mask_shape=None):
        self.w = self.add_weight(name="w", shape=(query_shape[-1], values_shape[-1]), initializer="glorot_uniform")

    def score(self, values, query):
        return _dot(values, ops.matmul(query, self.w))


@keras.saving.register_keras_serializable(package="attn")
class ConcatAttention(Attention):
    """vᵀ tanh(W₁h + W₂s) (Bahdanau, additive)."""

    kind = "concat"

    def __init__(self, units: int = 64, **kwargs):
        super().__init__(**kwargs)
        self.units = units
        self.w1 = keras.layers.Dense(units, name="w1")
        self.w2 = keras.layers.Dense(units, name="w2")
        self.v = keras.layers.Dense(1, name="v")

    def build(self, values_shape, query_shape, mask_shape=None):
        self.w1.build(values_shape)
        self.w2.build(query_shape)
        self.v.build((None, None, self.units))

    def score(self, values, query):
        hidden = ops.tanh(self.w1(values) + ops.expand_dims(self.w2(query), 1))  # (B, T, U)
        return ops.squeeze(self.v(hidden), -1)  # (B, T)

    def get_config(self):
        return {**super().get_config(), "units": self.units}


@keras.saving.register_keras_serializable(package="attn")
class LocationAttention(Attention):
    """softmax(W s): scores depend on the position only, read from the query (Luong location).
    W has one row per position up to `max_len`; a batch of T steps uses the first T."""

    kind = "location"

    def __init__(self, max_len: int = 500, **kwargs):
        super().__init__(**kwargs)
        self.max_len = max_len
        self.w = keras.layers.Dense(max_len, name="w")

    def build(self, values_shape, query_shape, mask_shape=None):
        self.w.build(query_shape)

    def score(self, values, query):
        steps = ops.shape(values)[1]
        return self.w(query)[:, :steps]  # (B, T)

    def get_config(self):
        return {**super().get_config(), "max_len": self.max_len}


_LAYERS = {cls.kind: cls
           for cls in (DotAttention, ScaledDotAttention, GeneralAttention, ConcatAttention, LocationAttention)}


def make_attention(kind: str, units: int = 64, max_len: int = 500, name: str = "attention") -> Attention:
    """The attention layer for `kind` (one of KINDS)."""
    if kind not in _LAYERS:
        raise ValueError(f"unknown attention kind {kind!r}; choose one of {', '.join(KINDS)}")
    if kind == "concat":
        return ConcatAttention(units, name=name)
    if kind == "location":
        return LocationAttention(max_len, name=name)
    return _LAYERS[kind](name=name)
