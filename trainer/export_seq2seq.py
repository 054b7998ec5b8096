"""Translator -> bundle: encoder.onnx + decoder_step.onnx + manifest, with three parity gates.

encoder.onnx       source int32 [batch, time] -> states [batch, time, 2U], h, c [batch, 2U]
                   (the unmasked twin's fused bidirectional LSTM fed in-graph sequence_lens, no Loop)
decoder_step.onnx  previous int32 [batch], h, c [batch, 2U], states [batch, time, 2U],
                   source_mask bool [batch, time] -> log_probs [batch, vocab], next_h, next_c, attention
Gates: encoder outputs and one decoder step against Keras (max |Δ| <= 1e-4), and a whole greedy
decode through the runtime's Translator equal to Keras' greedy decode, token for token.
"""

from __future__ import annotations

import datetime
from pathlib import Path
from typing import Callable

import numpy as np
import onnx

from runtime.bundle import FORMAT, sha256_of, write_manifest
from trainer.export import (
    DEFAULT_OPSET,
    PARITY_TOLERANCE,
    ExportContext,
    ParityError,
    _producer_versions,
    pass_check_structure,
    pass_sequence_lens,
    parity_texts,
)
from trainer.fit_seq2seq import TranslatorResult, keras_greedy
from trainer.models.seq2seq import build_encoder


def convert_encoder(result: TranslatorResult, opset: int) -> onnx.ModelProto:
    import tensorflow as tf
    import tf2onnx

    twin = build_encoder(result.model.config, masked=False)
    twin.set_weights(result.model.encoder.get_weights())
    signature = (tf.TensorSpec((None, None), tf.int32, name="source"),)
    proto, _ = tf2onnx.convert.from_keras(twin, input_signature=signature, opset=opset)
    context = ExportContext(result.model.config, result.source_tokenizer, opset, input_name="source")
    for apply in (pass_sequence_lens, pass_check_structure):
        proto = apply(proto, context)
    return proto


def convert_step(result: TranslatorResult, opset: int) -> onnx.ModelProto:
    import tensorflow as tf
    import tf2onnx

    hidden = 2 * result.model.config.units
    signature = (
        tf.TensorSpec((None,), tf.int32, name="previous"),
        tf.TensorSpec((None, hidden), tf.float32, name="h"),
        tf.TensorSpec((None, hidden), tf.float32, name="c"),
        tf.TensorSpec((None, None, hidden), tf.float32, name="states"),
        tf.TensorSpec((None, None), tf.bool, name="source_mask"),
    )
    proto, _ = tf2onnx.convert.from_keras(result.model.step_model(), input_signature=signature, opset=opset)
    return pass_check_structure(proto, ExportContext(result.model.config, result.target_tokenizer, opset))


def _max_delta(name: str, got: np.ndarray, expected: np.ndarray, tolerance: float) -> float:
    if got.shape != expected.shape:
        raise ParityError(f"parity: output {name!r} has shape {got.shape}, Keras gives {expected.shape}")
    delta = float(np.max(np.abs(got - expected), initial=0.0))
    if not np.isfinite(delta) or delta > tolerance:
        raise ParityError(f"parity: output {name!r} differs from Keras by max |Δ| = {delta:.3g} > {tolerance:g}")
    return delta


def check_translator_parity(result: TranslatorResult, folder: Path, sentences: list[str], tolerance: float = PARITY_TOLERANCE) -> dict:
    import onnxruntime as ort

    encoder = ort.InferenceSession(str(folder / "encoder.onnx"), providers=["CPUExecutionProvider"])
    step = ort.InferenceSession(str(folder / "decoder_step.onnx"), providers=["CPUExecutionProvider"])
    source, _ = result.source_tokenizer.encode(sentences)
    expected = {k: np.asarray(v) for k, v in result.model.encoder.predict_on_batch(source).items()}
    got = dict(zip(["states", "h", "c"], encoder.run(["states", "h", "c"], {"source": source})))
    figures = {f"max_abs_encoder_{k}": _max_delta(f"encoder.{k}", got[k], expected[k], tolerance) for k in ("h", "c")}
    real = source != 0  # padded positions of `states` are not read by the decoder (masked)
    figures["max_abs_encoder_states"] = _max_delta("encoder.states", got["states"][real], expected["states"][real], tolerance)

    rng = np.random.default_rng(0)
    previous = rng.integers(2, result.target_tokenizer.vocab_size, size=len(sentences)).astype(np.int32)
    feeds = {"previous": previous, "h": expected["h"], "c": expected["c"], "states": expected["states"], "source_mask": real}
    reference = result.model.step_model().predict_on_batch([feeds[k] for k in ("previous", "h", "c", "states", "source_mask")])
    outputs = ["log_probs", "next_h", "next_c", "attention"]
    for name, value in zip(outputs, step.run(outputs, feeds)):
        figures[f"max_abs_step_{name}"] = _max_delta(f"decoder_step.{name}", value, np.asarray(reference[name]), tolerance)

    from runtime.bundle import Bundle
    from runtime.translator import Translator

    manifest = {"task": "translation", "graphs": {"encoder": {"file": "encoder.onnx"}, "decoder_step": {"file": "decoder_step.onnx"}},
                "target_tokenizer": result.target_tokenizer.to_dict(), "model": result.model.config.to_dict(),
                "max_target_len": result.model.config.max_target_len}
    translator = Translator(Bundle(folder, manifest, result.source_tokenizer), provider="cpu")
    onnx_greedy = translator.translate(sentences, beam_size=1)
    keras_ids = keras_greedy(result.model, result.source_tokenizer, result.target_tokenizer, sentences)
    end = result.target_tokenizer.id_of("</s>")
    for i, (ours, theirs) in enumerate(zip(onnx_greedy, keras_ids)):
        theirs = [t for t in theirs if t != end]
        if result.target_tokenizer.decode(theirs) != ours.tokens:
            raise ParityError(f"parity: greedy decode of sentence {i} differs: ONNX {ours.tokens} vs Keras "
                              f"{result.target_tokenizer.decode(theirs)}")
    figures["greedy_sentences_identical"] = len(sentences)
    figures["tolerance"] = tolerance
    return figures


def export_translator_bundle(result: TranslatorResult, out_dir: str | Path, *, opset: int = DEFAULT_OPSET,
                             metrics: dict | None = None, data: dict | None = None,
                             parity_sentences: list[str] | None = None, log: Callable[[str], None] = print) -> dict:
    """Write both graphs, gate them, then the manifest (a folder without a manifest is no bundle:
    a failed gate removes the graphs)."""
    out = Path(out_dir)
    graphs = {"encoder": convert_encoder(result, opset), "decoder_step": convert_step(result, opset)}
    for role, proto in graphs.items():
        onnx.save(proto, out / f"{role}.onnx")
    sentences = (parity_sentences or []) + parity_texts(result.source_tokenizer)
    try:
        parity = check_translator_parity(result, out, sentences)
    except Exception:
        for role in graphs:
            (out / f"{role}.onnx").unlink(missing_ok=True)
        raise
    worst = max(v for k, v in parity.items() if k.startswith("max_abs"))
    log(f"parity: encoder and decoder step max |Δ| = {worst:.2e} (tolerance {PARITY_TOLERANCE:g}); "
        f"greedy decode identical to Keras on {len(sentences)} sentences OK")
    config = result.model.config
    manifest = {
        "format": FORMAT,
        "task": "translation",
        "created": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "graphs": {
            "encoder": {"file": "encoder.onnx", "sha256": sha256_of(out / "encoder.onnx"),
                        "inputs": [{"name": "source", "type": "int32", "shape": ["batch", "time"]}],
                        "outputs": [{"name": "states", "type": "float32", "shape": ["batch", "time", 2 * config.units]},
                                    {"name": "h", "type": "float32", "shape": ["batch", 2 * config.units]},
                                    {"name": "c", "type": "float32", "shape": ["batch", 2 * config.units]}]},
            "decoder_step": {"file": "decoder_step.onnx", "sha256": sha256_of(out / "decoder_step.onnx"),
                             "inputs": [{"name": n} for n in ("previous", "h", "c", "states", "source_mask")],
                             "outputs": [{"name": n} for n in ("log_probs", "next_h", "next_c", "attention")]},
        },
        "tokenizer": result.source_tokenizer.to_dict(),
        "target_tokenizer": result.target_tokenizer.to_dict(),
        "max_len": config.max_source_len,
        "max_target_len": config.max_target_len,
        "attention": config.style if config.style != "luong" else f"luong-{config.score}",
        "precision": "fp32",
        "opset": opset,
        "model": config.to_dict(),
        "metrics": metrics or {},
        "data": data or {},
        "parity": parity,
        "producer": _producer_versions(),
    }
    write_manifest(out, manifest)
    return manifest
