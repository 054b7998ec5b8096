"""BiLSTM + attention sentiment classifier.

tokens (B, T) int32, right-padded with 0
  -> Embedding (mask_zero)                         (B, T, E)
  -> N x Bidirectional LSTM, return sequences       (B, T, 2U)
  -> attention over all states, query = [h_fwd; h_bwd] of the last layer's final states (B, 2U)
  -> Dense(relu) -> Dropout -> Dense(1, sigmoid)    (B,)
Outputs: {"probability": (B,), "attention": (B, T)}.

`members=N` (N > 1) builds an ensemble: N such networks (sub-models `member_0` … `member_{N-1}`,
trained separately with seeds seed … seed+N-1 on one shared tokenizer) reading the same tokens;
both outputs are the members' means. One graph, the same inputs and outputs as a single model.

`masked=False` builds the export twin: identical weights, but the recurrent layers see no Keras
mask (the exported ONNX LSTM gets `sequence_lens` instead). The attention mask is always computed
from the token ids, so padding never gets attention weight in either form.
"""

from __future__ import annotations

from dataclasses import replace

import keras
from keras import layers, ops

from trainer.attention import make_attention
from trainer.config import ClassifierConfig  # noqa: F401  (the settings live in trainer.config)


def build_classifier(config: ClassifierConfig, masked: bool = True) -> keras.Model:
    """The functional model with outputs {"probability", "attention"}."""
    if config.members > 1:
        return _build_ensemble(config, masked)
    tokens = keras.Input(shape=(None,), dtype="int32", name="tokens")
    mask = ops.not_equal(tokens, 0)  # (B, T)
    x = layers.Embedding(config.vocab_size, config.embedding_dim, mask_zero=masked, name="embedding")(tokens)
    if config.embedding_dropout:
        x = layers.SpatialDropout1D(config.embedding_dropout, seed=config.seed, name="embedding_dropout")(x)
    for i in range(config.lstm_layers - 1):
        x = layers.Bidirectional(layers.LSTM(config.lstm_units, return_sequences=True), name=f"bilstm_{i}")(x)
    last = layers.LSTM(config.lstm_units, return_sequences=True, return_state=True)
    x, forward_h, _, backward_h, _ = layers.Bidirectional(last, name=f"bilstm_{config.lstm_layers - 1}")(x)
    query = layers.Concatenate(name="query")([forward_h, backward_h])  # (B, 2U)
    attention = make_attention(config.attention, config.attention_units, config.max_len)
    context, weights = attention(x, query, mask)  # (B, 2U), (B, T)
    hidden = layers.Dense(config.dense_units, activation="relu", name="dense")(context)
    hidden = layers.Dropout(config.dropout, seed=config.seed, name="dropout")(hidden)
    probability = layers.Dense(1, activation="sigmoid", name="output")(hidden)
    probability = ops.squeeze(probability, -1)  # (B,)
    return keras.Model(tokens, {"probability": probability, "attention": weights}, name="bilstm_attention")


def member_config(config: ClassifierConfig, k: int) -> ClassifierConfig:
    """The single-network config of ensemble member k (its own seed)."""
    return replace(config, members=1, seed=config.seed + k)


def _build_ensemble(config: ClassifierConfig, masked: bool) -> keras.Model:
    tokens = keras.Input(shape=(None,), dtype="int32", name="tokens")
    outputs = []
    for k in range(config.members):
        member = build_classifier(member_config(config, k), masked)
        member.name = f"member_{k}"
        outputs.append(member(tokens))
    probability = layers.Average(name="probability")([o["probability"] for o in outputs])
    attention = layers.Average(name="attention")([o["attention"] for o in outputs])
    return keras.Model(tokens, {"probability": probability, "attention": attention}, name="bilstm_attention_ensemble")


def combine_members(models: list[keras.Model], config: ClassifierConfig) -> keras.Model:
    """An ensemble model (config.members == len(models)) carrying each trained member's weights."""
    if config.members != len(models):
        raise ValueError(f"config says {config.members} members, got {len(models)} models")
    ensemble = build_classifier(config)
    for k, model in enumerate(models):
        ensemble.get_layer(f"member_{k}").set_weights(model.get_weights())
    return ensemble


def export_twin(model: keras.Model, config: ClassifierConfig) -> keras.Model:
    """The same network without a Keras mask on the recurrent layers, carrying `model`'s weights."""
    twin = build_classifier(config, masked=False)
    twin.set_weights(model.get_weights())
    return twin


def config_from_model(model: keras.Model) -> ClassifierConfig:
    """Recover the architecture of a saved classifier; refuse a model this exporter does not know."""
    from trainer.attention import Attention

    members = [layer for layer in model.layers if isinstance(layer, keras.Model)]
    if members and [m.name for m in members] == [f"member_{k}" for k in range(len(members))]:
        first = config_from_model(members[0])
        return replace(first, members=len(members))
    known = (layers.InputLayer, layers.Embedding, layers.SpatialDropout1D, layers.Bidirectional, layers.Concatenate,
             layers.Dense, layers.Dropout, Attention)
    unknown = [f"{layer.name} ({type(layer).__name__})" for layer in model.layers if not isinstance(layer, known)]
    if unknown:
        raise ValueError(f"unsupported layer(s) for export: {', '.join(unknown)}")
    try:
        embedding = model.get_layer("embedding")
        attention = model.get_layer("attention")
        recurrent = [layer for layer in model.layers if isinstance(layer, layers.Bidirectional)]
        return ClassifierConfig(
            vocab_size=embedding.input_dim,
            embedding_dim=embedding.output_dim,
            lstm_units=recurrent[0].forward_layer.units,
            lstm_layers=len(recurrent),
            attention=attention.kind,
            attention_units=getattr(attention, "units", 64),
            max_len=getattr(attention, "max_len", 500),
            dense_units=model.get_layer("dense").units,
            dropout=model.get_layer("dropout").rate,
            embedding_dropout=next(
                (layer.rate for layer in model.layers if isinstance(layer, layers.SpatialDropout1D)), 0.0),
        )
    except (ValueError, IndexError, AttributeError) as error:
        raise ValueError(f"not a BiLSTM + attention classifier built by this toolkit ({error})") from None
