"""Shared test helpers: one structure check for exported graphs, and seeded untrained models.

Export and parity do not depend on learning, so the tests that check them use untrained models with
seeded random weights (tf2onnx `tests/test_lstm.py`), drawn N(0, 1), wider than Keras' initialisers,
so the probabilities spread and the attention is peaked: parity is checked on non-trivial outputs,
at no training cost. Tests that check learning train (conftest.train_tiny).
"""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import numpy as np

LOOPS = ("Loop", "Scan")  # generic recurrence: what a silent fallback of tf2onnx produces


def op_counts(graph) -> Counter:
    """How often each op type occurs in an ONNX graph (a ModelProto or a path to one)."""
    import onnx

    proto = onnx.load(str(graph)) if isinstance(graph, (str, Path)) else graph
    return Counter(node.op_type for node in proto.graph.node)


def assert_fused(graph, **expected: int) -> Counter:
    """No Loop/Scan, and each op named in `expected` occurs exactly that often (0: absent)
    (tf2onnx's `check_op_count`). Returns the counts."""
    counts = op_counts(graph)
    assert not {op: counts[op] for op in LOOPS if counts[op]}, f"generic recurrence in the graph: {dict(counts)}"
    for op, count in expected.items():
        assert counts[op] == count, f"{op}: {counts[op]} node(s), expected {count} ({dict(counts)})"
    return counts


def randomize_weights(model, seed: int = 0, scale: float = 1.0) -> None:
    """Replace every weight with seeded N(0, scale²) draws (wider than the initialisers)."""
    rng = np.random.default_rng(seed)
    model.set_weights([rng.normal(0.0, scale, w.shape).astype(w.dtype) for w in model.get_weights()])


def seeded_classifier(texts, seed: int = 0, **overrides):
    """(model, config, tokenizer): an untrained classifier with seeded random weights and a word
    tokenizer fitted on `texts`. `overrides` are ClassifierConfig fields."""
    import keras

    from runtime.tokenizer import TokenizerSpec
    from trainer.models.classifier import ClassifierConfig, build_classifier
    from trainer.tokenizer_fit import fit_tokenizer

    settings = dict(vocab_size=2000, max_len=48, embedding_dim=16, lstm_units=8, attention_units=16, dense_units=8,
                    seed=seed)
    config = ClassifierConfig(**{**settings, **overrides})
    tokenizer = fit_tokenizer(texts, config.vocab_size, TokenizerSpec(max_len=config.max_len))
    config.vocab_size = tokenizer.vocab_size
    keras.utils.set_random_seed(seed)
    model = build_classifier(config)
    randomize_weights(model, seed)
    return model, config, tokenizer
