"""Model bundles: a folder with ONNX graph(s) and `manifest.json`.

The manifest schema lives here, once: the exporter validates what it writes with `validate_manifest`
and the runtime validates what it reads, then checks each graph's sha256. A bundle that fails any
check is refused with a `BundleError` naming the file and the field.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from pathlib import Path

from runtime.errors import AttnError
from runtime.tokenizer import Tokenizer

FORMAT = "attn-bundle/1"
MANIFEST = "manifest.json"
TASKS = {"sentiment": ("model",), "translation": ("encoder", "decoder_step")}  # task -> graph roles

# field -> (type, required); nested graph entries are checked separately.
_FIELDS: dict[str, tuple[type | tuple[type, ...], bool]] = {
    "format": (str, True),
    "task": (str, True),
    "graphs": (dict, True),
    "tokenizer": (dict, True),
    "labels": (list, False),  # sentiment: the two label names
    "target_tokenizer": (dict, False),  # translation: the target side's tokenizer
    "max_len": (int, True),
    "attention": (str, True),
    "precision": (str, True),
    "opset": (int, True),
    "model": (dict, True),
    "metrics": (dict, True),
    "data": (dict, True),
    "producer": (dict, True),
    "parity": (dict, False),
    "created": (str, False),
}
_GRAPH_FIELDS = {"file": str, "sha256": str, "inputs": list, "outputs": list}


class BundleError(AttnError, ValueError):
    """A bundle that cannot be used; the message names the file and what is wrong."""


def sha256_of(path: str | Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def validate_manifest(manifest: dict, where: str = MANIFEST) -> None:
    """Raise BundleError naming the first field that is missing or of the wrong type."""
    if not isinstance(manifest, dict):
        raise BundleError(f"{where}: expected a JSON object")
    if manifest.get("format") != FORMAT:
        raise BundleError(f"{where}: format is {manifest.get('format')!r}, this runtime reads {FORMAT!r}")
    for name, (kind, required) in _FIELDS.items():
        if name not in manifest:
            if required:
                raise BundleError(f"{where}: missing field {name!r}")
            continue
        if not isinstance(manifest[name], kind) or isinstance(manifest[name], bool):
            raise BundleError(f"{where}: field {name!r} should be {getattr(kind, '__name__', kind)}")
    if manifest["task"] not in TASKS:
        raise BundleError(f"{where}: unknown task {manifest['task']!r}; known: {', '.join(TASKS)}")
    missing_roles = [role for role in TASKS[manifest["task"]] if role not in manifest["graphs"]]
    if missing_roles:
        raise BundleError(f"{where}: a {manifest['task']} bundle needs graph(s) {', '.join(missing_roles)}")
    for role, graph in manifest["graphs"].items():
        for name, kind in _GRAPH_FIELDS.items():
            if not isinstance(graph, dict) or not isinstance(graph.get(name), kind):
                raise BundleError(f"{where}: graphs.{role}.{name} is missing or not a {kind.__name__}")
    if manifest["task"] == "sentiment" and len(manifest.get("labels", [])) != 2:
        raise BundleError(f"{where}: a sentiment bundle needs 2 labels, found {len(manifest.get('labels', []))}")
    if manifest["task"] == "translation" and "target_tokenizer" not in manifest:
        raise BundleError(f"{where}: a translation bundle needs field 'target_tokenizer'")
    for name in ("tokenizer", "target_tokenizer"):
        if name in manifest:
            try:
                Tokenizer.from_dict(manifest[name])
            except (ValueError, KeyError, TypeError) as error:
                raise BundleError(f"{where}: field {name!r}: {error}") from None


@dataclass
class Bundle:
    path: Path
    manifest: dict
    tokenizer: Tokenizer

    @property
    def task(self) -> str:
        return self.manifest["task"]

    def graph_path(self, role: str = "model") -> Path:
        return self.path / self.manifest["graphs"][role]["file"]

    @classmethod
    def load(cls, path: str | Path, verify: bool = True) -> "Bundle":
        """Read and validate `path/manifest.json`; with `verify`, check every graph's sha256."""
        path = Path(path)
        manifest_path = path / MANIFEST
        if not path.is_dir():
            raise BundleError(f"{path}: no such bundle folder")
        try:
            manifest = json.loads(manifest_path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            raise BundleError(f"{path}: not a bundle (no {MANIFEST})") from None
        except (json.JSONDecodeError, UnicodeDecodeError) as error:
            raise BundleError(f"{manifest_path}: corrupt manifest ({error})") from None
        validate_manifest(manifest, str(manifest_path))
        for role, graph in manifest["graphs"].items():
            file = path / graph["file"]
            if not file.is_file():
                raise BundleError(f"{file}: graph {role!r} named in the manifest is missing")
            if verify and sha256_of(file) != graph["sha256"]:
                raise BundleError(
                    f"{file}: sha256 does not match the manifest (file changed or corrupt); re-export the bundle"
                )
        return cls(path, manifest, Tokenizer.from_dict(manifest["tokenizer"]))


def write_manifest(folder: str | Path, manifest: dict) -> Path:
    """Validate, then write `folder/manifest.json`."""
    validate_manifest(manifest)
    target = Path(folder) / MANIFEST
    target.write_text(json.dumps(manifest, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    return target
