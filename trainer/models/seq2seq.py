"""Encoder-decoder translator with Luong or Bahdanau attention (or none, as a baseline).

encoder: source ids (B, S) -> Embedding(mask) -> bidirectional LSTM(U)
         -> states (B, S, 2U), initial decoder state h0 = [h_fwd; h_bwd], c0 = [c_fwd; c_bwd]  (B, 2U)
decoder: one step, shared by training (scanned over the target with teacher forcing), export
         (decoder_step.onnx) and the runtime's greedy / beam search:
  luong     sₜ = LSTM(emb(yₜ₋₁), sₜ₋₁); cₜ = attend(states, query sₜ); s̃ₜ = tanh(W_c[cₜ; sₜ]); logits = W_o s̃ₜ
  bahdanau  cₜ = attend(states, query sₜ₋₁); sₜ = LSTM([emb(yₜ₋₁); cₜ], sₜ₋₁); logits = W_o [sₜ; cₜ]
  none      sₜ = LSTM(emb(yₜ₋₁), sₜ₋₁); logits = W_o sₜ
The attention score (`dot`, `general`, `concat`) comes from trainer.attention; Bahdanau uses concat.
"""

from __future__ import annotations

from dataclasses import dataclass

import keras
from keras import layers, ops

from trainer.attention import make_attention
from trainer.config import STYLES, Seq2SeqConfig  # noqa: F401  (the settings live in trainer.config)


@keras.saving.register_keras_serializable(package="attn")
class DecoderStep(layers.Layer):
    """One decoder step: (previous ids (B,), h, c, states (B, S, H), mask (B, S))
    -> (logits (B, V), h, c, attention (B, S))."""

    def __init__(self, target_vocab: int, embedding_dim: int, units: int, style: str, score: str, **kwargs):
        super().__init__(**kwargs)
        self.target_vocab, self.embedding_dim, self.units, self.style, self.score = (
            target_vocab, embedding_dim, units, style, score)
        self.embedding = layers.Embedding(target_vocab, embedding_dim, name="target_embedding")
        self.cell = layers.LSTMCell(units, name="decoder_cell")
        self.attention = None if style == "none" else make_attention(score, units=units, name="attention")
        self.combine = (layers.Dense(units, activation="tanh", use_bias=False, name="combine") if style == "luong"
                        else None)
        self.project = layers.Dense(target_vocab, name="project")

    def build(self, ids_shape, h_shape, c_shape, states_shape, source_mask_shape):
        hidden = states_shape[-1]
        self.embedding.build(ids_shape)
        context = hidden if self.style == "bahdanau" else 0
        self.cell.build((None, self.embedding_dim + context))
        if self.attention is not None:
            self.attention.build(states_shape, (None, self.units), source_mask_shape)
        if self.combine is not None:
            self.combine.build((None, hidden + self.units))
        self.project.build((None, self.units + (hidden if self.style == "bahdanau" else 0)))

    @property
    def feature_size(self) -> int:
        """Width of the vector the output projection reads."""
        return 2 * self.units if self.style == "bahdanau" else self.units

    def advance(self, ids, h, c, states, source_mask):
        """One step without the output projection: (feature, h, c, attention weights)."""
        mask = source_mask  # (a call argument named `mask` would be taken by Keras' implicit masking)
        x = self.embedding(ids)  # (B, E)
        if self.style == "bahdanau":
            context, weights = self.attention(states, h, mask)  # query sₜ₋₁
            out, (h, c) = self.cell(ops.concatenate([x, context], -1), [h, c])
            return ops.concatenate([out, context], -1), h, c, weights
        out, (h, c) = self.cell(x, [h, c])
        if self.style == "none":
            return out, h, c, ops.zeros(ops.shape(states)[:2])
        context, weights = self.attention(states, out, mask)  # query sₜ
        return self.combine(ops.concatenate([context, out], -1)), h, c, weights

    def call(self, ids, h, c, states, source_mask):
        feature, h, c, weights = self.advance(ids, h, c, states, source_mask)
        return self.project(feature), h, c, weights

    def get_config(self):
        return {**super().get_config(), "target_vocab": self.target_vocab, "embedding_dim": self.embedding_dim,
                "units": self.units, "style": self.style, "score": self.score}


@keras.saving.register_keras_serializable(package="attn")
class TeacherForcing(layers.Layer):
    """Runs `DecoderStep` over the gold previous tokens (B, T) -> logits (B, T, V)."""

    def __init__(self, step: DecoderStep, dropout: float = 0.0, **kwargs):
        super().__init__(**kwargs)
        self.step = step
        self.rate = dropout
        self.dropout = layers.Dropout(dropout)

    def call(self, previous, h, c, states, source_mask, training=None):
        # The carry is [h; c; feature] in one tensor and is also what each step emits: Keras' TF scan
        # wants outputs shaped like the carry. The projection to the vocabulary then runs once over
        # all steps, outside the loop.
        units = self.step.units

        def body(carry, ids):
            feature, h, c, _ = self.step.advance(ids, carry[:, :units],
                                                 carry[:, units : 2 * units], states, source_mask)
            carry = ops.concatenate([h, c, feature], -1)
            return carry, carry

        start = ops.concatenate([h, c, ops.zeros((ops.shape(h)[0], self.step.feature_size))], -1)
        steps = ops.transpose(previous, (1, 0))  # (T, B)
        if keras.backend.backend() == "tensorflow":
            # tf.scan stacks one TensorArray entry per step; Keras' TF scan rewrites one entry for the
            # carry each step, and training through it crashed TensorFlow (segfault) now and then.
            import tensorflow as tf

            carries = tf.scan(lambda carry, ids: body(carry, ids)[0], steps, initializer=start)
        else:
            _, carries = ops.scan(body, start, steps)  # (T, B, 2U + F)
        features = self.dropout(ops.transpose(carries[:, :, 2 * units :], (1, 0, 2)), training=training)
        return self.step.project(features)  # (B, T, V)

    def build(self, previous_shape, h_shape, c_shape, states_shape, source_mask_shape):
        if not self.step.built:
            self.step.build((None,), h_shape, c_shape, states_shape, source_mask_shape)

    def compute_output_shape(self, previous_shape, h_shape, c_shape, states_shape, source_mask_shape):
        return (*previous_shape, self.step.target_vocab)


def build_encoder(config: Seq2SeqConfig, masked: bool = True) -> keras.Model:
    source = keras.Input(shape=(None,), dtype="int32", name="source")
    x = layers.Embedding(config.source_vocab, config.embedding_dim, mask_zero=masked, name="source_embedding")(source)
    x = layers.Dropout(config.dropout, name="embedding_dropout")(x)  # identity at inference: nothing to export
    lstm = layers.LSTM(config.units, return_sequences=True, return_state=True)
    states, fh, fc, bh, bc = layers.Bidirectional(lstm, name="encoder_lstm")(x)  # (B, S, 2U)
    states = layers.Dropout(config.dropout, name="states_dropout")(states)
    h0 = layers.Concatenate(name="h")([fh, bh])
    c0 = layers.Concatenate(name="c")([fc, bc])
    states = layers.Identity(name="states")(states)  # named outputs: the ONNX graph keeps these names
    return keras.Model(source, {"states": states, "h": h0, "c": c0}, name="encoder")


def build_step_model(step: DecoderStep, hidden: int) -> keras.Model:
    """The decoder step as a model with log-probabilities: what decoder_step.onnx holds."""
    previous = keras.Input(shape=(), dtype="int32", name="previous")
    h = keras.Input(shape=(hidden,), name="h")
    c = keras.Input(shape=(hidden,), name="c")
    states = keras.Input(shape=(None, hidden), name="states")
    mask = keras.Input(shape=(None,), dtype="bool", name="source_mask")
    logits, h2, c2, weights = step(previous, h, c, states, mask)
    outputs = {
        "log_probs": layers.Activation("log_softmax", name="log_probs")(logits),
        "next_h": layers.Identity(name="next_h")(h2),
        "next_c": layers.Identity(name="next_c")(c2),
        "attention": layers.Identity(name="attention")(weights),
    }
    return keras.Model([previous, h, c, states, mask], outputs, name="decoder_step")


@dataclass
class Seq2Seq:
    config: Seq2SeqConfig
    encoder: keras.Model
    step: DecoderStep
    trainer: keras.Model  # (source, previous target) -> logits (B, T, V)

    def step_model(self) -> keras.Model:
        return build_step_model(self.step, 2 * self.config.units)


def build_seq2seq(config: Seq2SeqConfig) -> Seq2Seq:
    encoder = build_encoder(config)
    step = DecoderStep(config.target_vocab, config.embedding_dim, 2 * config.units, config.style,
                       config.score, name="decoder_step")
    source = keras.Input(shape=(None,), dtype="int32", name="source")
    previous = keras.Input(shape=(None,), dtype="int32", name="previous")
    encoded = encoder(source)
    mask = ops.not_equal(source, 0)
    logits = TeacherForcing(step, config.dropout, name="teacher_forcing")(previous, encoded["h"], encoded["c"],
                                                                          encoded["states"], mask)
    return Seq2Seq(config, encoder, step, keras.Model([source, previous], logits, name="seq2seq"))
