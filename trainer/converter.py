"""The one export outline (CTranslate2's `converters/converter.py`), which every exporter follows:

    refuse an existing bundle without force -> load -> validate -> optimize/quantize -> gate -> save atomically

`Converter.export` runs the steps; a subclass says what its graphs are (`convert`: load, validate,
optimize), how they are gated against Keras (`gate`), what may follow the gate (`quantize`) and
what its manifest adds (`manifest_fields`). The instances: `trainer.export.ClassifierConverter`
(model.onnx) and `trainer.export_seq2seq.TranslatorConverter` (encoder.onnx + decoder_step.onnx).

Graphs are written into a hidden staging folder inside the target, gated there, and moved into
place only after every gate passed; the manifest is written last. A failed export leaves no graph
and no manifest behind.

Parity is compared in one place, `Parity`: it collects max |Δ| per output over any number of
batches and raises `ParityShapeError` (some output has the wrong shape) or `ParityToleranceError`
(some output is beyond the tolerance), each message naming every failing output (Optimum's
`exporters/error_utils.py`).
"""

from __future__ import annotations

import datetime
import os
import shutil
import tempfile
from pathlib import Path
from typing import Callable

import numpy as np

from runtime.bundle import FORMAT, sha256_of, write_manifest
from trainer.errors import (  # noqa: F401  (raised here; defined with the other errors)
    DecodeMismatchError,
    ExportError,
    ParityError,
    ParityShapeError,
    ParityToleranceError,
    QuantizationError,
)

DEFAULT_OPSET = 17
PARITY_TOLERANCE = 1e-4  # float32 LSTM over 500 steps: observed ~1e-7; 1e-4 leaves headroom, catches bugs
PRODUCERS = ("tensorflow", "keras", "tf2onnx", "onnx", "onnxruntime", "attn-onnx")
KEPT_IN_OUT_DIR = ("training",)  # what `trainer.fit.save_training_outputs` writes beside a bundle


# === Parity ===
class Parity:
    """Max |Δ| per output between ONNX and Keras, over as many batches as `compare` is called with."""

    def __init__(self, tolerance: float = PARITY_TOLERANCE):
        self.tolerance = tolerance
        self.deltas: dict[str, float] = {}
        self.shape_errors: list[str] = []

    def compare(self, name: str, got, expected) -> None:
        got, expected = np.asarray(got), np.asarray(expected)
        if got.shape != expected.shape:
            self.shape_errors.append(f"output {name!r} has shape {got.shape}, Keras gives {expected.shape}")
            return
        delta = float(np.max(np.abs(got.astype(np.float64) - expected), initial=0.0))
        previous = self.deltas.get(name, 0.0)
        self.deltas[name] = previous if np.isnan(previous) or delta <= previous else delta  # NaN sticks

    def check(self) -> dict[str, float]:
        """The figures, or ParityShapeError / ParityToleranceError naming every failing output."""
        if self.shape_errors:
            raise ParityShapeError("parity: " + "; ".join(self.shape_errors))
        failing = [f"output {name!r} differs from Keras by max |Δ| = {delta:.3g} > {self.tolerance:g}"
                   for name, delta in self.deltas.items() if not np.isfinite(delta) or delta > self.tolerance]
        if failing:
            raise ParityToleranceError("parity: " + "; ".join(failing))
        return dict(self.deltas)


def parity_texts(tokenizer, seed: int = 0) -> list[str]:
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


# === Folder and manifest ===
def prepare_out_dir(out_dir: str | Path, force: bool, keep: tuple[str, ...] = ()) -> Path:
    """Create `out_dir`; refuse an existing folder holding anything but `keep` unless `force`."""
    out = Path(out_dir)
    if out.exists() and not out.is_dir():
        raise ExportError(f"{out}: exists and is not a folder")
    if out.is_dir() and any(p.name not in keep for p in out.iterdir()) and not force:
        raise ExportError(f"{out}: folder exists and is not empty; pass --force to overwrite")
    out.mkdir(parents=True, exist_ok=True)
    return out


def producer_versions() -> dict:
    import importlib.metadata as md

    versions = {}
    for package in PRODUCERS:
        try:
            versions[package] = md.version(package)
        except md.PackageNotFoundError:
            versions[package] = None
    return versions


def record_metrics(folder: str | Path, extra: dict) -> None:
    """Add figures measured on the finished bundle (e.g. a test-split score) to its manifest's
    metrics; the manifest is re-validated on write."""
    import json

    from runtime.bundle import MANIFEST

    manifest = json.loads((Path(folder) / MANIFEST).read_text(encoding="utf-8"))
    manifest["metrics"].update(extra)
    write_manifest(folder, manifest)


def build_manifest(task: str, folder: Path, graphs: dict[str, dict], *, config, opset: int, parity: dict,
                   precision: str = "fp32", metrics: dict | None = None, data: dict | None = None, **fields) -> dict:
    """The manifest of a bundle in `folder`: `graphs` maps a role to its contract ({"file", "inputs",
    "outputs"}); each graph's sha256 is added. `fields` are the task's own (tokenizer, labels, ...)."""
    return {
        "format": FORMAT,
        "task": task,
        "created": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "graphs": {role: {"file": g["file"], "sha256": sha256_of(folder / g["file"]),
                          **{k: v for k, v in g.items() if k != "file"}}
                   for role, g in graphs.items()},
        **fields,
        "precision": precision,
        "opset": opset,
        "model": config.to_dict(),
        "metrics": metrics or {},
        "data": data or {},
        "parity": parity,
        "producer": producer_versions(),
    }


# === The outline ===
class Converter:
    """One export; subclasses fill in the steps. `graphs` maps each role to its contract
    ({"file": "model.onnx", "inputs": [...], "outputs": [...]})."""

    task: str = ""
    graphs: dict[str, dict] = {}

    def __init__(self, config, opset: int = DEFAULT_OPSET, log: Callable[[str], None] = print):
        self.config, self.opset, self.log = config, opset, log

    def convert(self) -> dict:
        """Load, validate and optimize: role -> onnx.ModelProto, structure already checked."""
        raise NotImplementedError

    def gate(self, staging: Path) -> dict:
        """Compare the staged graphs with Keras; return the parity figures or raise ParityError."""
        raise NotImplementedError

    def quantize(self, staging: Path, force: bool) -> dict:
        """After the gate: replace staged graphs by quantized ones and gate them. Returns what the
        manifest records of it ({"precision", "metrics", "parity"}, each optional). Default: nothing."""
        return {}

    def manifest_fields(self) -> dict:
        """The task's own manifest fields (tokenizers, labels, max_len, attention)."""
        return {}

    def export(self, out_dir: str | Path, *, force: bool = False, metrics: dict | None = None,
               data: dict | None = None) -> dict:
        """Run the outline into `out_dir` (created; an existing bundle needs `force`). Returns the manifest."""
        import onnx

        out = prepare_out_dir(out_dir, force, keep=KEPT_IN_OUT_DIR)
        protos = self.convert()
        staging = Path(tempfile.mkdtemp(prefix=".staging-", dir=out))
        try:
            for role, proto in protos.items():
                onnx.save(proto, staging / self.graphs[role]["file"])
            parity = self.gate(staging)
            quantized = self.quantize(staging, force)
            for contract in self.graphs.values():
                os.chmod(staging / contract["file"], 0o644)
                os.replace(staging / contract["file"], out / contract["file"])
        finally:
            shutil.rmtree(staging, ignore_errors=True)
        manifest = build_manifest(self.task, out, self.graphs, config=self.config, opset=self.opset,
                                  parity=parity | quantized.get("parity", {}),
                                  precision=quantized.get("precision", "fp32"),
                                  metrics=(metrics or {}) | quantized.get("metrics", {}), data=data,
                                  **self.manifest_fields())
        write_manifest(out, manifest)
        return manifest
