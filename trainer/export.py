"""Keras -> ONNX bundle with fused LSTM ops, a parity gate and a manifest.

tf2onnx turns a *masked* Keras LSTM into a generic `Loop` (slow), an unmasked one into ONNX's fused
`LSTM` op. So we convert the unmasked twin of the model (same weights, see
`trainer.models.classifier.export_twin`) and then give every `LSTM` node the true row lengths as its
`sequence_lens` input, computed inside the graph from the token ids. The result must match the
masked Keras model: every export runs a parity gate and refuses to write a bundle that does not.

`ClassifierConverter` is an instance of the one export outline (`trainer.converter`): refuse an
existing bundle without force -> load (tf2onnx) -> validate and optimize (an ordered list of passes,
each `pass(proto, context) -> proto`, tf2onnx's rewriter shape) -> parity gate -> optional int8
quantization with its accuracy gate -> save atomically, manifest last.

Graph contract:
    input  tokens       int32   [batch, time]   right-padded with 0, 1 <= time <= max_len
    output probability  float32 [batch]
    output attention    float32 [batch, time]   exactly 0 on padding
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import numpy as np
import onnx
from onnx import TensorProto, helper

from runtime.bundle import FORMAT
from runtime.session import with_cpu_flags
from runtime.tokenizer import Tokenizer
from trainer.converter import (  # noqa: F401  (the errors and settings are part of this module's API)
    DEFAULT_OPSET,
    PARITY_TOLERANCE,
    Converter,
    ExportError,
    Parity,
    ParityError,
    ParityShapeError,
    ParityToleranceError,
    QuantizationError,
    parity_texts,
    prepare_out_dir,
)
from trainer.models.classifier import ClassifierConfig, export_twin

FORBIDDEN_OPS = ("Loop", "Scan")
RECURRENT_OPS = ("LSTM", "GRU")
LABELS = ["negative", "positive"]
MAX_INT8_DROP_POINTS = 0.5  # default of `max_int8_drop_points`: int8 may lose this many accuracy points


@dataclass
class ExportContext:
    config: object  # ClassifierConfig or Seq2SeqConfig
    tokenizer: Tokenizer
    opset: int = DEFAULT_OPSET
    input_name: str = "tokens"  # the padded id input that sequence lengths are computed from
    notes: dict = field(default_factory=dict)


# === Conversion ===
def convert_keras(model, context: ExportContext) -> onnx.ModelProto:
    """tf2onnx conversion of the unmasked twin (fused LSTM ops, no sequence lengths yet)."""
    import tensorflow as tf
    import tf2onnx

    twin = export_twin(model, context.config)
    signature = (tf.TensorSpec((None, None), tf.int32, name="tokens"),)
    proto, _ = tf2onnx.convert.from_keras(twin, input_signature=signature, opset=context.opset)
    return proto


# === Passes ===
def pass_name_outputs(proto: onnx.ModelProto, context: ExportContext) -> onnx.ModelProto:
    """Rename the graph outputs to the contract's names, told apart by rank: [batch] vs [batch, time]."""
    by_rank = {len(o.type.tensor_type.shape.dim): o for o in proto.graph.output}
    if sorted(by_rank) != [1, 2] or len(proto.graph.output) != 2:
        found = [(o.name, len(o.type.tensor_type.shape.dim)) for o in proto.graph.output]
        raise ExportError(f"expected outputs of rank 1 (probability) and 2 (attention), found {found}")
    renames = {by_rank[1].name: "probability", by_rank[2].name: "attention"}
    for node in proto.graph.node:
        node.output[:] = [renames.get(name, name) for name in node.output]
        node.input[:] = [renames.get(name, name) for name in node.input]
    for output in proto.graph.output:
        output.name = renames[output.name]
    return proto


def pass_sequence_lens(proto: onnx.ModelProto, context: ExportContext) -> onnx.ModelProto:
    """Feed every recurrent node the per-row count of non-padding tokens as `sequence_lens`."""
    graph = proto.graph
    recurrent = [node for node in graph.node if node.op_type in RECURRENT_OPS]
    if not recurrent:
        raise ExportError("the converted graph has no fused LSTM/GRU node; tf2onnx fell back to a loop")
    lengths, ids = "sequence_lens", context.input_name
    zero = helper.make_tensor(f"{ids}_pad_id", TensorProto.INT32, [], [0])
    axis = helper.make_tensor(f"{ids}_time_axis", TensorProto.INT64, [1], [1])
    graph.initializer.extend([zero, axis])
    nodes = [
        helper.make_node("Equal", [ids, f"{ids}_pad_id"], [f"{ids}_is_pad"]),
        helper.make_node("Not", [f"{ids}_is_pad"], [f"{ids}_is_real"]),
        helper.make_node("Cast", [f"{ids}_is_real"], [f"{ids}_is_real_i32"], to=TensorProto.INT32),
        helper.make_node("ReduceSum", [f"{ids}_is_real_i32", f"{ids}_time_axis"], [lengths], keepdims=0),
    ]
    for node in recurrent:
        inputs = list(node.input) + [""] * (5 - len(node.input))
        if inputs[4]:
            raise ExportError(f"{node.op_type} node {node.name!r} already has sequence_lens {inputs[4]!r}")
        inputs[4] = lengths
        node.input[:] = inputs
    # topological order: the length nodes go first (they only read the graph input)
    existing = list(graph.node)
    del graph.node[:]
    graph.node.extend(nodes + existing)
    context.notes["recurrent_nodes"] = len(recurrent)
    return proto


def pass_check_structure(proto: onnx.ModelProto, context: ExportContext) -> onnx.ModelProto:
    """Refuse graphs with Loop/Scan (slow generic recurrence) and check ONNX validity."""
    ops = [node.op_type for node in proto.graph.node]
    forbidden = sorted({op for op in ops if op in FORBIDDEN_OPS})
    if forbidden:
        raise ExportError(f"the exported graph holds {', '.join(forbidden)}; every recurrence must be a fused op")
    onnx.checker.check_model(proto, full_check=True)
    return proto


def pass_metadata(proto: onnx.ModelProto, context: ExportContext) -> onnx.ModelProto:
    proto.doc_string = "BiLSTM + attention sentiment classifier (attn-onnx)"
    del proto.metadata_props[:]
    onnx.helper.set_model_props(proto, {"attention": context.config.attention, "bundle_format": FORMAT})
    return proto


Pass = Callable[[onnx.ModelProto, ExportContext], onnx.ModelProto]
PASSES: list[Pass] = [pass_name_outputs, pass_sequence_lens, pass_check_structure, pass_metadata]


# === Parity ===
def check_parity(keras_model, onnx_path: str | Path, tokenizer: Tokenizer, tolerance: float = PARITY_TOLERANCE) -> dict:
    """Max |Δ| of both outputs between Keras (masked) and onnxruntime, on the mixed batch and on a
    batch of only short rows (a different time width). Raises ParityShapeError / ParityToleranceError
    naming every failing output; padding must get exactly zero attention."""
    import onnxruntime as ort

    session = ort.InferenceSession(str(onnx_path), providers=["CPUExecutionProvider"])
    texts = parity_texts(tokenizer)
    short = [t for t in texts if len(tokenizer.tokenize(t)) <= 5]
    parity, outputs, leaked = Parity(tolerance), ["probability", "attention"], 0.0
    for batch in (texts, short):
        ids, _ = tokenizer.encode(batch)
        expected = keras_model(ids, training=False)
        got = dict(zip(outputs, session.run(outputs, {"tokens": ids})))
        for name in outputs:
            parity.compare(name, got[name], expected[name])
        if got["attention"].shape == ids.shape:
            leaked = max(leaked, float(np.max(np.abs(got["attention"][ids == 0]), initial=0.0)))
    figures = parity.check()
    if leaked != 0.0:
        raise ParityToleranceError(f"parity: padding positions get attention weight up to {leaked:.3g}; "
                                   "must be exactly 0")
    return {f"max_abs_{name}": delta for name, delta in figures.items()} | {"tolerance": tolerance, "rows": len(texts)}


# === int8 ===
def quantize_int8(fp32_path: str | Path, int8_path: str | Path) -> None:
    """onnxruntime dynamic quantization: LSTM -> DynamicQuantizeLSTM, MatMul -> MatMulInteger
    (int8 weights, activations quantized per batch at run time)."""
    import logging

    from onnxruntime.quantization import QuantType, quantize_dynamic

    root = logging.getLogger()
    level = root.level
    root.setLevel(logging.ERROR)  # quantize_dynamic logs a pre-processing hint at WARNING on the root logger
    try:
        quantize_dynamic(str(fp32_path), str(int8_path), weight_type=QuantType.QInt8)
    finally:
        root.setLevel(level)


def graph_accuracy(onnx_path: str | Path, tokenizer: Tokenizer, texts: list[str], labels: np.ndarray) -> float:
    """Accuracy of one graph through the runtime's own Classifier (same batching as serving)."""
    from runtime.bundle import Bundle
    from runtime.models.classifier import Classifier

    path = Path(onnx_path)
    manifest = {"task": "sentiment", "labels": list(LABELS), "graphs": {"model": {"file": path.name}}}
    classifier = Classifier(Bundle(path.parent, manifest, tokenizer), provider="cpu")
    return float(np.mean((classifier.predict(texts) >= 0.5).astype(np.int32) == labels))


def int8_gate(fp32_path, int8_path, tokenizer, gate_data, force: bool, log,
              max_drop_points: float = MAX_INT8_DROP_POINTS) -> dict:
    """fp32 vs int8 accuracy on `gate_data` (texts, labels); refuse a drop over `max_drop_points`."""
    texts, labels = gate_data
    fp32 = graph_accuracy(fp32_path, tokenizer, texts, labels)
    int8 = graph_accuracy(int8_path, tokenizer, texts, labels)
    drop = 100 * (fp32 - int8)
    figures = f"fp32 {100 * fp32:.2f} % vs int8 {100 * int8:.2f} % on {len(texts)} validation rows"
    if drop > max_drop_points and not force:
        raise QuantizationError(
            f"int8 accuracy drop {drop:.2f} points > {max_drop_points} ({figures}); pass --force to keep it anyway"
        )
    log(f"int8 gate: {figures}, drop {drop:.2f} points "
        f"(limit {max_drop_points}){' FORCED' if drop > max_drop_points else ' OK'}")
    gate = {"fp32_accuracy": round(fp32, 5), "int8_accuracy": round(int8, 5), "drop_points": round(drop, 3),
            "rows": len(texts), "forced": drop > max_drop_points}
    return with_cpu_flags(gate)  # int8 moves with the CPU's kernels: the figure says on which it was measured


# === The converter ===
class ClassifierConverter(Converter):
    """A Keras classifier -> model.onnx (the outline in trainer.converter)."""

    task = "sentiment"
    graphs = {"model": {
        "file": "model.onnx",
        "inputs": [{"name": "tokens", "type": "int32", "shape": ["batch", "time"]}],
        "outputs": [
            {"name": "probability", "type": "float32", "shape": ["batch"]},
            {"name": "attention", "type": "float32", "shape": ["batch", "time"]},
        ],
    }}

    def __init__(self, model, config: ClassifierConfig, tokenizer: Tokenizer, *, opset: int = DEFAULT_OPSET,
                 passes: list[Pass] | None = None, quantize: str | None = None,
                 gate_data: tuple[list[str], np.ndarray] | None = None,
                 max_int8_drop_points: float = MAX_INT8_DROP_POINTS, log: Callable[[str], None] = print):
        if quantize not in (None, "int8"):
            raise ExportError(f"unknown quantization {quantize!r}; supported: int8")
        if quantize and gate_data is None:
            raise ExportError("int8 export needs validation data for its accuracy gate")
        super().__init__(config, opset, log)
        self.model, self.tokenizer, self.passes = model, tokenizer, passes or PASSES
        self.quantization, self.gate_data, self.max_int8_drop_points = quantize, gate_data, max_int8_drop_points

    def convert(self) -> dict:
        context = ExportContext(self.config, self.tokenizer, self.opset)
        proto = convert_keras(self.model, context)
        for apply in self.passes:
            proto = apply(proto, context)
        return {"model": proto}

    def gate(self, staging: Path) -> dict:
        parity = check_parity(self.model, staging / "model.onnx", self.tokenizer)
        self.log(f"parity: max |Δprobability| = {parity['max_abs_probability']:.2e}, "
                 f"max |Δattention| = {parity['max_abs_attention']:.2e} (tolerance {parity['tolerance']:g}, "
                 f"{parity['rows']} rows) OK")
        return parity

    def quantize(self, staging: Path, force: bool) -> dict:
        if not self.quantization:
            return {"parity": {"graph": "shipped"}}
        fp32, int8 = staging / "model.onnx", staging / "model.int8.onnx"
        quantize_int8(fp32, int8)
        gate = int8_gate(fp32, int8, self.tokenizer, self.gate_data, force, self.log, self.max_int8_drop_points)
        os.replace(int8, fp32)
        return {"precision": "int8", "metrics": {"int8_gate": gate}, "parity": {"graph": "fp32"}}

    def manifest_fields(self) -> dict:
        return {"tokenizer": self.tokenizer.to_dict(), "labels": list(LABELS), "max_len": self.tokenizer.spec.max_len,
                "attention": self.config.attention}


def export_bundle(
    model,
    config: ClassifierConfig,
    tokenizer: Tokenizer,
    out_dir: str | Path,
    *,
    opset: int = DEFAULT_OPSET,
    metrics: dict | None = None,
    data: dict | None = None,
    passes: list[Pass] | None = None,
    quantize: str | None = None,
    gate_data: tuple[list[str], np.ndarray] | None = None,
    max_int8_drop_points: float = MAX_INT8_DROP_POINTS,
    force: bool = False,
    log: Callable[[str], None] = print,
) -> dict:
    """Convert, run the passes, gate on parity, write `model.onnx` + `manifest.json`, and the text graph
    `model_text.onnx` where the tokenizer compiles (trainer.text_graph; else one line says why). Returns the manifest.

    quantize="int8": after the fp32 parity gate, quantize and gate on accuracy over `gate_data`
    (validation texts and labels); `force` keeps an int8 graph that fails the gate (and overwrites
    an existing bundle in `out_dir`)."""
    from trainer.text_graph import add_text_graph, refusal

    converter = ClassifierConverter(model, config, tokenizer, opset=opset, passes=passes, quantize=quantize,
                                    gate_data=gate_data, max_int8_drop_points=max_int8_drop_points, log=log)
    manifest = converter.export(out_dir, force=force, metrics=metrics, data=data)
    reason = refusal(tokenizer.spec)
    if reason:
        log(f"no text graph (model_text.onnx): {reason}")
        return manifest
    return add_text_graph(out_dir, log=log)
