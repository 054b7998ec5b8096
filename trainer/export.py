"""Keras -> ONNX bundle with fused LSTM ops, a parity gate and a manifest.

tf2onnx turns a *masked* Keras LSTM into a generic `Loop` (slow), an unmasked one into ONNX's fused
`LSTM` op. So we convert the unmasked twin of the model (same weights, see
`trainer.models.classifier.export_twin`) and then give every `LSTM` node the true row lengths as its
`sequence_lens` input, computed inside the graph from the token ids. The result must match the
masked Keras model: every export runs a parity gate and refuses to write a bundle that does not.

The exporter is an ordered list of passes, each `pass(proto, context) -> proto` (tf2onnx's rewriter
shape), so later passes (int8 quantization) slot in.

Graph contract:
    input  tokens       int32   [batch, time]   right-padded with 0, 1 <= time <= max_len
    output probability  float32 [batch]
    output attention    float32 [batch, time]   exactly 0 on padding
"""

from __future__ import annotations

import datetime
import os
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import numpy as np
import onnx
from onnx import TensorProto, helper

from runtime.bundle import FORMAT, sha256_of, write_manifest
from runtime.tokenizer import Tokenizer
from trainer.models.classifier import ClassifierConfig, export_twin

DEFAULT_OPSET = 17
PARITY_TOLERANCE = 1e-4  # float32 LSTM over 500 steps: observed ~1e-7; 1e-4 leaves headroom, catches bugs
FORBIDDEN_OPS = ("Loop", "Scan")
RECURRENT_OPS = ("LSTM", "GRU")
LABELS = ["negative", "positive"]


class ExportError(RuntimeError):
    """The model cannot be exported (unsupported layer, bad graph structure)."""


class ParityError(ExportError):
    """ONNX and Keras disagree beyond the tolerance; the message names the output and the figure."""


class QuantizationError(ExportError):
    """int8 loses more accuracy than allowed; the message gives both figures."""


MAX_INT8_DROP_POINTS = 0.5


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
def parity_texts(tokenizer: Tokenizer, seed: int = 0) -> list[str]:
    """Texts whose encodings mix lengths: empty, 1 token, short, exactly max_len, beyond (truncated),
    and out-of-vocabulary words."""
    rng = np.random.default_rng(seed)
    words = tokenizer.vocab or ["x"]
    max_len = tokenizer.spec.max_len
    lengths = [1, 2, 5, max(1, max_len // 3), max(1, max_len - 1), max_len, max_len + 9]
    texts = [" ".join(rng.choice(words, size=n)) for n in lengths]
    texts.append("qqqzzz " + " ".join(rng.choice(words, size=min(7, max_len))) + " zzzqqq")
    texts.append("")
    return texts


def check_parity(keras_model, onnx_path: str | Path, tokenizer: Tokenizer, tolerance: float = PARITY_TOLERANCE) -> dict:
    """Max |Δ| of both outputs between Keras (masked) and onnxruntime, on the mixed batch and on a
    batch of only short rows (a different time width). Raises ParityError above `tolerance`."""
    import onnxruntime as ort

    session = ort.InferenceSession(str(onnx_path), providers=["CPUExecutionProvider"])
    texts = parity_texts(tokenizer)
    short = [t for t in texts if len(tokenizer.tokenize(t)) <= 5]
    figures = {"probability": 0.0, "attention": 0.0}
    for batch in (texts, short):
        ids, _ = tokenizer.encode(batch)
        expected = keras_model(ids, training=False)
        got = dict(zip(["probability", "attention"], session.run(["probability", "attention"], {"tokens": ids})))
        for name in figures:
            reference = np.asarray(expected[name])
            if got[name].shape != reference.shape:
                raise ParityError(f"parity: output {name!r} has shape {got[name].shape}, Keras gives {reference.shape}")
            figures[name] = max(figures[name], float(np.max(np.abs(got[name] - reference))))
        padding = ids == 0
        leaked = float(np.max(np.abs(got["attention"][padding]), initial=0.0))
        if leaked != 0.0:
            raise ParityError(f"parity: padding positions get attention weight up to {leaked:.3g}; must be exactly 0")
    for name, delta in figures.items():
        if not np.isfinite(delta) or delta > tolerance:
            raise ParityError(f"parity: output {name!r} differs from Keras by max |Δ| = {delta:.3g} > {tolerance:g}")
    return {f"max_abs_{name}": delta for name, delta in figures.items()} | {"tolerance": tolerance, "rows": len(texts)}


# === int8 ===
def quantize_int8(fp32_path: str | Path, int8_path: str | Path) -> None:
    """onnxruntime dynamic quantization: LSTM -> DynamicQuantizeLSTM, MatMul -> MatMulInteger
    (int8 weights, activations quantized per batch at run time)."""
    import logging

    from onnxruntime.quantization import QuantType, quantize_dynamic

    logging.getLogger().setLevel(logging.ERROR)  # quantize_dynamic logs a pre-processing hint at WARNING
    quantize_dynamic(str(fp32_path), str(int8_path), weight_type=QuantType.QInt8)


def graph_accuracy(onnx_path: str | Path, tokenizer: Tokenizer, texts: list[str], labels: np.ndarray) -> float:
    """Accuracy of one graph through the runtime's own Classifier (same batching as serving)."""
    from runtime.bundle import Bundle
    from runtime.classifier import Classifier

    path = Path(onnx_path)
    manifest = {"task": "sentiment", "labels": list(LABELS), "graphs": {"model": {"file": path.name}}}
    classifier = Classifier(Bundle(path.parent, manifest, tokenizer), provider="cpu")
    return float(np.mean((classifier.predict(texts) >= 0.5).astype(np.int32) == labels))


def int8_gate(fp32_path, int8_path, tokenizer, gate_data, force: bool, log) -> dict:
    """fp32 vs int8 accuracy on `gate_data` (texts, labels); refuse a drop over MAX_INT8_DROP_POINTS."""
    texts, labels = gate_data
    fp32 = graph_accuracy(fp32_path, tokenizer, texts, labels)
    int8 = graph_accuracy(int8_path, tokenizer, texts, labels)
    drop = 100 * (fp32 - int8)
    figures = f"fp32 {100 * fp32:.2f} % vs int8 {100 * int8:.2f} % on {len(texts)} validation rows"
    if drop > MAX_INT8_DROP_POINTS and not force:
        raise QuantizationError(
            f"int8 accuracy drop {drop:.2f} points > {MAX_INT8_DROP_POINTS} ({figures}); pass --force to keep it anyway"
        )
    log(f"int8 gate: {figures}, drop {drop:.2f} points (limit {MAX_INT8_DROP_POINTS}){' FORCED' if drop > MAX_INT8_DROP_POINTS else ' OK'}")
    return {"fp32_accuracy": round(fp32, 5), "int8_accuracy": round(int8, 5), "drop_points": round(drop, 3),
            "rows": len(texts), "forced": drop > MAX_INT8_DROP_POINTS}


# === Bundle ===
def _producer_versions() -> dict:
    import importlib.metadata as md

    versions = {}
    for package in ("tensorflow", "keras", "tf2onnx", "onnx", "onnxruntime", "attn-onnx"):
        try:
            versions[package] = md.version(package)
        except md.PackageNotFoundError:
            versions[package] = None
    return versions


def prepare_out_dir(out_dir: str | Path, force: bool) -> Path:
    """Refuse an existing non-empty folder unless `force`."""
    out = Path(out_dir)
    if out.exists() and not out.is_dir():
        raise ExportError(f"{out}: exists and is not a folder")
    if out.is_dir() and any(out.iterdir()) and not force:
        raise ExportError(f"{out}: folder exists and is not empty; pass --force to overwrite")
    out.mkdir(parents=True, exist_ok=True)
    return out


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
    force: bool = False,
    log: Callable[[str], None] = print,
) -> dict:
    """Convert, run the passes, gate on parity, write `model.onnx` + `manifest.json`. Returns the manifest.
    `out_dir` must exist (see `prepare_out_dir`).

    quantize="int8": after the fp32 parity gate, quantize and gate on accuracy over `gate_data`
    (validation texts and labels); `force` keeps an int8 graph that fails the gate."""
    if quantize not in (None, "int8"):
        raise ExportError(f"unknown quantization {quantize!r}; supported: int8")
    if quantize and gate_data is None:
        raise ExportError("int8 export needs validation data for its accuracy gate")
    out = Path(out_dir)
    context = ExportContext(config, tokenizer, opset)
    proto = convert_keras(model, context)
    for apply in passes or PASSES:
        proto = apply(proto, context)
    # write next to the target, gate, then move into place: a failed gate leaves no model.onnx
    fd, tmp = tempfile.mkstemp(prefix=".model.", suffix=".onnx", dir=out)
    os.close(fd)
    tmp_int8 = tmp.replace(".onnx", ".int8.onnx")
    quantization = None
    try:
        onnx.save(proto, tmp)
        parity = check_parity(model, tmp, tokenizer)
        log(
            f"parity: max |Δprobability| = {parity['max_abs_probability']:.2e}, "
            f"max |Δattention| = {parity['max_abs_attention']:.2e} (tolerance {parity['tolerance']:g}, "
            f"{parity['rows']} rows) OK"
        )
        if quantize:
            quantize_int8(tmp, tmp_int8)
            quantization = int8_gate(tmp, tmp_int8, tokenizer, gate_data, force, log)
            os.replace(tmp_int8, tmp)
        os.chmod(tmp, 0o644)  # mkstemp creates 0600; a bundle is meant to be read by others
        os.replace(tmp, out / "model.onnx")
    finally:
        for leftover in (tmp, tmp_int8):
            if os.path.exists(leftover):
                os.unlink(leftover)
    manifest = {
        "format": FORMAT,
        "task": "sentiment",
        "created": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "graphs": {
            "model": {
                "file": "model.onnx",
                "sha256": sha256_of(out / "model.onnx"),
                "inputs": [{"name": "tokens", "type": "int32", "shape": ["batch", "time"]}],
                "outputs": [
                    {"name": "probability", "type": "float32", "shape": ["batch"]},
                    {"name": "attention", "type": "float32", "shape": ["batch", "time"]},
                ],
            }
        },
        "tokenizer": tokenizer.to_dict(),
        "labels": list(LABELS),
        "max_len": tokenizer.spec.max_len,
        "attention": config.attention,
        "precision": quantize or "fp32",
        "opset": opset,
        "model": config.to_dict(),
        "metrics": (metrics or {}) | ({"int8_gate": quantization} if quantization else {}),
        "data": data or {},
        "parity": parity | {"graph": "fp32" if quantize else "shipped"},
        "producer": _producer_versions(),
    }
    write_manifest(out, manifest)
    return manifest
