"""Translator -> bundle: encoder.onnx + decoder_step.onnx + manifest, with three parity gates.

encoder.onnx       source int32 [batch, time] -> states [batch, time, 2U], h, c [batch, 2U]
                   (the unmasked twin's fused bidirectional LSTM fed in-graph sequence_lens, no Loop)
decoder_step.onnx  previous int32 [batch], h, c [batch, 2U], states [batch, time, 2U],
                   source_mask bool [batch, time] -> log_probs [batch, vocab], next_h, next_c, attention
Gates: encoder outputs and one decoder step against Keras (max |Δ| <= 1e-4), and a whole greedy
decode through the runtime's Translator equal to Keras' greedy decode, token for token.
`TranslatorConverter` is an instance of the one export outline (`trainer.converter`).
"""

from __future__ import annotations

from pathlib import Path
from typing import Callable

import numpy as np
import onnx

from trainer.converter import DEFAULT_OPSET, PARITY_TOLERANCE, Converter, DecodeMismatchError, Parity
from trainer.export import ExportContext, parity_texts, pass_check_structure, pass_sequence_lens
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


def check_translator_parity(result: TranslatorResult, folder: Path, sentences: list[str],
                            tolerance: float = PARITY_TOLERANCE) -> dict:
    import onnxruntime as ort

    encoder = ort.InferenceSession(str(folder / "encoder.onnx"), providers=["CPUExecutionProvider"])
    step = ort.InferenceSession(str(folder / "decoder_step.onnx"), providers=["CPUExecutionProvider"])
    source, _ = result.source_tokenizer.encode(sentences)
    expected = {k: np.asarray(v) for k, v in result.model.encoder.predict_on_batch(source).items()}
    got = dict(zip(["states", "h", "c"], encoder.run(["states", "h", "c"], {"source": source})))
    parity = Parity(tolerance)
    for name in ("h", "c"):
        parity.compare(f"encoder_{name}", got[name], expected[name])
    real = source != 0  # padded positions of `states` are not read by the decoder (masked)
    if got["states"].shape == expected["states"].shape:
        parity.compare("encoder_states", got["states"][real], expected["states"][real])
    else:
        parity.compare("encoder_states", got["states"], expected["states"])

    rng = np.random.default_rng(0)
    previous = rng.integers(2, result.target_tokenizer.vocab_size, size=len(sentences)).astype(np.int32)
    feeds = {"previous": previous, "h": expected["h"], "c": expected["c"],
             "states": expected["states"], "source_mask": real}
    reference = result.model.step_model().predict_on_batch(
        [feeds[k] for k in ("previous", "h", "c", "states", "source_mask")])
    outputs = ["log_probs", "next_h", "next_c", "attention"]
    for name, value in zip(outputs, step.run(outputs, feeds)):
        parity.compare(f"step_{name}", value, reference[name])
    figures = {f"max_abs_{name}": delta for name, delta in parity.check().items()}

    from runtime.bundle import Bundle
    from runtime.models.translator import Translator

    manifest = {"task": "translation",
                "graphs": {"encoder": {"file": "encoder.onnx"}, "decoder_step": {"file": "decoder_step.onnx"}},
                "target_tokenizer": result.target_tokenizer.to_dict(), "model": result.model.config.to_dict(),
                "max_target_len": result.model.config.max_target_len}
    translator = Translator(Bundle(folder, manifest, result.source_tokenizer), provider="cpu")
    # the model alone, as Keras runs it (its max_len cut, no sentence split, no copying): what parity compares
    onnx_greedy = translator.translate_parts(list(sentences), 1, translator.max_length, return_attention=False)
    keras_ids = keras_greedy(result.model, result.source_tokenizer, result.target_tokenizer, sentences)
    end = result.target_tokenizer.id_of("</s>")
    differing, compared = [], 0
    for i, (ours, theirs) in enumerate(zip(onnx_greedy, keras_ids)):
        if not result.source_tokenizer.tokenize(sentences[i]):
            continue  # no source tokens: the runtime answers "" without decoding, by design; Keras would decode
        compared += 1
        theirs = result.target_tokenizer.decode([t for t in theirs if t != end])
        if theirs != ours.tokens:
            differing.append(f"sentence {i}: ONNX {ours.tokens} vs Keras {theirs}")
    if differing:
        raise DecodeMismatchError(f"parity: greedy decode differs on {len(differing)} of {len(sentences)} sentences: "
                                  + "; ".join(differing[:5]) + ("; ..." if len(differing) > 5 else ""))
    figures["greedy_sentences_identical"] = compared
    figures["tolerance"] = tolerance
    return figures


class TranslatorConverter(Converter):
    """A trained translator -> encoder.onnx + decoder_step.onnx (the outline in trainer.converter)."""

    task = "translation"

    def __init__(self, result: TranslatorResult, *, opset: int = DEFAULT_OPSET,
                 parity_sentences: list[str] | None = None, log: Callable[[str], None] = print):
        super().__init__(result.model.config, opset, log)
        self.result = result
        self.sentences = (parity_sentences or []) + parity_texts(result.source_tokenizer)
        hidden = 2 * self.config.units
        self.graphs = {
            "encoder": {"file": "encoder.onnx",
                        "inputs": [{"name": "source", "type": "int32", "shape": ["batch", "time"]}],
                        "outputs": [{"name": "states", "type": "float32", "shape": ["batch", "time", hidden]},
                                    {"name": "h", "type": "float32", "shape": ["batch", hidden]},
                                    {"name": "c", "type": "float32", "shape": ["batch", hidden]}]},
            "decoder_step": {"file": "decoder_step.onnx",
                             "inputs": [{"name": n} for n in ("previous", "h", "c", "states", "source_mask")],
                             "outputs": [{"name": n} for n in ("log_probs", "next_h", "next_c", "attention")]},
        }

    def convert(self) -> dict:
        return {"encoder": convert_encoder(self.result, self.opset),
                "decoder_step": convert_step(self.result, self.opset)}

    def gate(self, staging: Path) -> dict:
        parity = check_translator_parity(self.result, staging, self.sentences)
        worst = max(v for k, v in parity.items() if k.startswith("max_abs"))
        self.log(f"parity: encoder and decoder step max |Δ| = {worst:.2e} (tolerance {parity['tolerance']:g}); "
                 f"greedy decode identical to Keras on {len(self.sentences)} sentences OK")
        return parity

    def manifest_fields(self) -> dict:
        config = self.config
        return {"tokenizer": self.result.source_tokenizer.to_dict(),
                "target_tokenizer": self.result.target_tokenizer.to_dict(),
                "max_len": config.max_source_len, "max_target_len": config.max_target_len,
                "attention": config.style if config.style != "luong" else f"luong-{config.score}"}


def export_translator_bundle(result: TranslatorResult, out_dir: str | Path, *, opset: int = DEFAULT_OPSET,
                             metrics: dict | None = None, data: dict | None = None,
                             parity_sentences: list[str] | None = None, force: bool = False,
                             log: Callable[[str], None] = print) -> dict:
    """Write both graphs, gate them, then the manifest; a failed gate writes nothing."""
    converter = TranslatorConverter(result, opset=opset, parity_sentences=parity_sentences, log=log)
    return converter.export(out_dir, force=force, metrics=metrics, data=data)
