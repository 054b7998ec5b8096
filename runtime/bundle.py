"""Model bundles: a folder with ONNX graph(s) and `manifest.json`.

The manifest schema lives here, once: the exporter validates what it writes with `validate_manifest`
and the runtime validates what it reads, then checks each graph's sha256. A bundle that fails any
check is refused with a `BundleError` naming the file and the field.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import stat
from dataclasses import dataclass, field
from pathlib import Path

from runtime.errors import BundleError
from runtime.tokenizer import Tokenizer

FORMAT = "attn-bundle/1"
MANIFEST = "manifest.json"
TASKS = {"sentiment": ("model",), "translation": ("encoder", "decoder_step")}  # task -> graph roles
# task -> graph roles a bundle may have: "text" is the raw-text graph (the tokenizer compiled into the
# graph, then the model), trainer/text_graph.py
OPTIONAL_ROLES = {"sentiment": ("text",), "translation": ()}

# The graph contract: per task and graph role, each input and output tensor by name with its dtype
# and rank. The manifest must declare exactly these names (`graphs.ROLE.inputs/outputs`), the graph
# must have them (checked at load by `open_session`), and the runtime binds tensors by them.
GRAPH_CONTRACT: dict[str, dict[str, dict[str, dict[str, tuple[str, int]]]]] = {
    "sentiment": {
        "model": {
            "inputs": {"tokens": ("int32", 2)},
            "outputs": {"probability": ("float32", 1), "attention": ("float32", 2)},
        },
        "text": {
            "inputs": {"text": ("string", 1)},
            "outputs": {"probability": ("float32", 1), "attention": ("float32", 2), "tokens": ("string", 2),
                        "lengths": ("int32", 1)},
        },
    },
    "translation": {
        "encoder": {
            "inputs": {"source": ("int32", 2)},
            "outputs": {"states": ("float32", 3), "h": ("float32", 2), "c": ("float32", 2)},
        },
        "decoder_step": {
            "inputs": {"previous": ("int32", 1), "h": ("float32", 2), "c": ("float32", 2), "states": ("float32", 3),
                       "source_mask": ("bool", 2)},
            "outputs": {"log_probs": ("float32", 2), "next_h": ("float32", 2), "next_c": ("float32", 2),
                        "attention": ("float32", 2)},
        },
    },
}
_ORT_TYPES = {"tensor(int32)": "int32", "tensor(float)": "float32", "tensor(bool)": "bool", "tensor(int64)": "int64",
              "tensor(string)": "string"}
MAX_MANIFEST_BYTES = 128 * 2**20  # the shipped manifests are under 1 MiB; read no more than this
MAX_LEN_LIMIT = 100_000  # tokens per text; a bigger max_len is a corrupt manifest, not a model

# field -> (type, required); nested graph entries are checked separately.
_FIELDS: dict[str, tuple[type | tuple[type, ...], bool]] = {
    "format": (str, True),
    "task": (str, True),
    "graphs": (dict, True),
    "tokenizer": (dict, True),
    "labels": (list, False),  # sentiment: the two label names
    "target_tokenizer": (dict, False),  # translation: the target side's tokenizer
    "max_len": (int, True),
    "max_target_len": (int, False),  # translation: most target tokens per sentence, the end token included
    "attention": (str, True),
    "precision": (str, True),
    "opset": (int, True),
    "model": (dict, True),
    "metrics": (dict, True),
    "data": (dict, True),
    "producer": (dict, True),
    "parity": (dict, False),
    "languages": (list, False),  # ISO 639-1 codes of the data (sentiment: what other-script is judged against)
    "diagnostics": (dict, False),  # sentiment: {"scripts", "max_oov_share", ...} (runtime/screening.py)
    "calibration": (dict, False),  # sentiment: {"temperature", ...}, applied to every probability
    "created": (str, False),
}
_GRAPH_FIELDS = {"file": str, "sha256": str, "inputs": list, "outputs": list}


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
        _check_files_field(graph["file"], f"{where}: graphs.{role}.file")
    for role, sides in GRAPH_CONTRACT[manifest["task"]].items():
        if role in OPTIONAL_ROLES[manifest["task"]] and role not in manifest["graphs"]:
            continue
        for side, tensors in sides.items():
            _check_declared(manifest["graphs"][role][side], tensors, f"{where}: graphs.{role}.{side}")
    for name in ("max_len", "max_target_len"):
        if name in manifest and not 1 <= manifest[name] <= MAX_LEN_LIMIT:
            raise BundleError(f"{where}: field {name!r} is {manifest[name]}, expected 1 to {MAX_LEN_LIMIT:,}")
    if manifest["task"] == "sentiment":
        labels = manifest.get("labels", [])
        if len(labels) != 2 or not all(isinstance(label, str) and label for label in labels):
            raise BundleError(f"{where}: a sentiment bundle needs 2 label names, found {labels!r}"[:200])
    if manifest["task"] == "translation":
        for name in ("target_tokenizer", "max_target_len"):
            if name not in manifest:
                raise BundleError(f"{where}: a translation bundle needs field {name!r} (re-export the bundle)")
    for name in ("tokenizer", "target_tokenizer"):
        if name in manifest:
            tokenizer_from_manifest(manifest[name], f"{where}: field {name!r}")
    _check_diagnostics(manifest, where)


def _check_diagnostics(manifest: dict, where: str) -> None:
    """languages, diagnostics.scripts / max_oov_share and calibration.temperature, when present."""
    from runtime.screening import SCRIPTS

    if not all(isinstance(code, str) and code for code in manifest.get("languages", [])):
        raise BundleError(f"{where}: field 'languages' should list language codes such as 'en'")
    declared = manifest.get("diagnostics", {})
    scripts = declared.get("scripts", [])
    if not isinstance(scripts, list) or any(name not in SCRIPTS for name in scripts):
        raise BundleError(f"{where}: diagnostics.scripts {scripts!r} should list script names from: "
                          f"{', '.join(SCRIPTS)}"[:300])
    share = declared.get("max_oov_share", 0.0)
    if isinstance(share, bool) or not isinstance(share, (int, float)) or not 0 <= share <= 1:
        raise BundleError(f"{where}: diagnostics.max_oov_share is {share!r}, expected a number from 0 to 1")
    temperature = manifest.get("calibration", {}).get("temperature", 1.0)
    if isinstance(temperature, bool) or not isinstance(temperature, (int, float)) or not 0 < temperature < float("inf"):
        raise BundleError(f"{where}: calibration.temperature is {temperature!r}, expected a positive number")


def tokenizer_from_manifest(data: dict, where: str) -> Tokenizer:
    """The tokenizer a manifest field describes, or a BundleError naming what is wrong with it."""
    try:
        return Tokenizer.from_dict(data)
    except KeyError as error:
        raise BundleError(f"{where}: missing key {error.args[0]!r}") from None
    except ImportError as error:
        raise BundleError(f"{where}: {error}") from None
    except (ValueError, TypeError, RuntimeError, OSError, AttributeError) as error:  # binascii.Error is a ValueError
        message = str(error).strip().splitlines()[-1] if str(error).strip() else type(error).__name__
        if isinstance(error, (RuntimeError, OSError)):  # sentencepiece's own words for an unreadable model
            message = f"cannot be loaded ({message})"
        raise BundleError(f"{where}: {message[:200]}") from None


def _check_files_field(file: str, where: str) -> None:
    """A graph file is a plain relative name inside the bundle folder."""
    if not file or Path(file).is_absolute() or ".." in Path(file).parts or "\x00" in file:
        raise BundleError(f"{where} {file!r} must be a file name inside the bundle folder")


def _check_declared(declared: list, tensors: dict[str, tuple[str, int]], where: str) -> None:
    """The manifest declares exactly the contract's tensor names; a declared type or shape must agree."""
    names = []
    for entry in declared:
        if not isinstance(entry, dict) or not isinstance(entry.get("name"), str):
            raise BundleError(f"{where}: each entry needs a 'name'")
        names.append(entry["name"])
        if entry["name"] not in tensors:
            continue
        dtype, rank = tensors[entry["name"]]
        if "type" in entry and entry["type"] != dtype:
            raise BundleError(f"{where}: {entry['name']!r} is declared {entry['type']!r}, the contract says {dtype!r}")
        if "shape" in entry and (not isinstance(entry["shape"], list) or len(entry["shape"]) != rank):
            raise BundleError(f"{where}: {entry['name']!r} is declared with shape {entry['shape']!r}, "
                              f"the contract says rank {rank}")
    if sorted(names) != sorted(tensors):
        raise BundleError(f"{where} declares {', '.join(names) or 'nothing'}; the contract is {', '.join(tensors)}")


def check_graph(session, task: str, role: str, file: str | Path) -> None:
    """Refuse a graph whose inputs/outputs are not the contract's (e.g. an encoder as a model.onnx)."""
    contract = GRAPH_CONTRACT[task][role]
    for side, found in (("inputs", session.get_inputs()), ("outputs", session.get_outputs())):
        have = {tensor.name: tensor for tensor in found}
        wanted = contract[side]
        extra = sorted(set(have) - set(wanted)) if side == "inputs" else []
        missing = [name for name in wanted if name not in have]
        if missing or extra:
            raise BundleError(
                f"{file}: not a {task} {role!r} graph: its {side} are {', '.join(sorted(have)) or 'none'}, "
                f"the contract wants {', '.join(wanted)}"
            )
        for name, (dtype, rank) in wanted.items():
            tensor = have[name]
            got = _ORT_TYPES.get(tensor.type, tensor.type)
            shape = tensor.shape if isinstance(tensor.shape, list) else None
            if got != dtype or (shape is not None and len(shape) != rank):
                raise BundleError(
                    f"{file}: {side[:-1]} {name!r} is {got} of rank {len(shape) if shape is not None else '?'}, "
                    f"the contract wants {dtype} of rank {rank}"
                )


def check_vocabulary(session, file, input_name: str, output_name: str, vocab_size: int) -> None:
    """Run the graph once on the tokenizer's highest id, so a vocabulary larger than the graph's
    embedding is refused at load in one line, not by onnxruntime on the first rare word."""
    import numpy as np

    try:
        session.run([output_name], {input_name: np.array([[vocab_size - 1]], np.int32)})
    except Exception as error:  # onnxruntime: "Gather ... out of data bounds ... range [-20000,19999]"
        found = re.search(r"range \[-(\d+),", str(error))
        rows = f"{int(found.group(1)):,} rows" if found else "fewer rows"
        raise BundleError(f"{file}: the tokenizer has {vocab_size:,} ids but the graph's embedding has {rows}; "
                          "vocabulary and graph do not belong together (re-export the bundle)") from None


@dataclass
class Bundle:
    path: Path
    manifest: dict
    tokenizer: Tokenizer
    _graphs: dict = field(default_factory=dict, repr=False)  # role -> verified bytes, until a session takes them

    @property
    def task(self) -> str:
        return self.manifest["task"]

    def graph_path(self, role: str = "model") -> Path:
        """The graph file of `role`, resolved; refused when it (or a symlink) leads outside the folder."""
        file = self.path / self.manifest["graphs"][role]["file"]
        resolved, folder = file.resolve(), self.path.resolve()
        if not resolved.is_relative_to(folder):
            raise BundleError(f"{file}: graph {role!r} resolves to {resolved}, "
                              f"outside the bundle folder {folder}; refused")
        return file

    def graph_bytes(self, role: str = "model", verify: bool = True) -> bytes:
        """The graph's bytes, read once from inside the folder and checked against the sha256 (the
        session is built from these bytes, so the file checked is the file run, and ONNX external
        data, which could point anywhere, is refused by onnxruntime)."""
        cached = self._graphs.pop(role, None)
        if cached is not None:
            return cached
        file = self.graph_path(role)
        if not file.is_file():
            raise BundleError(f"{file}: graph {role!r} named in the manifest is missing")
        try:
            data = file.read_bytes()
        except OSError as error:
            raise BundleError(f"{file}: cannot read graph {role!r} ({error.strerror})") from None
        if (verify and "sha256" in self.manifest["graphs"][role]
                and hashlib.sha256(data).hexdigest() != self.manifest["graphs"][role]["sha256"]):
            raise BundleError(f"{file}: sha256 does not match the manifest (file changed or corrupt); "
                              "re-export the bundle")
        return data

    def open_session(self, role: str, provider: str = "auto", threads: int = 0, session_options=None):
        """(onnxruntime session, provider used) for graph `role`, checked against the task's contract."""
        from runtime.session import ProviderError, SessionOptions, make_session

        session_options = SessionOptions.of(session_options, threads=max(0, threads))  # a caller's typo: ValueError
        data = self.graph_bytes(role)
        file = self.graph_path(role)
        try:
            session, used = make_session(data, provider, session_options=session_options)
        except ProviderError:
            raise
        except Exception as error:  # onnxruntime's errors: truncated, random or unloadable graphs
            first = next((line for line in str(error).splitlines() if line.strip()), type(error).__name__)
            raise BundleError(f"{file}: not a loadable ONNX graph ({first.strip()[:200]})") from None
        check_graph(session, self.task, role, file)
        return session, used

    @classmethod
    def load(cls, path: str | Path, verify: bool = True) -> "Bundle":
        """Read and validate `path/manifest.json`; with `verify`, check every required graph's sha256. An
        optional graph (the text graph) is read and checked when it is opened, so a copy without it
        (e.g. an installed wheel that does not carry it) still serves its token graph."""
        path = Path(path)
        manifest_path = path / MANIFEST
        if not path.is_dir():
            raise BundleError(f"{path}: no such bundle folder")
        manifest = _read_manifest(path, manifest_path)
        validate_manifest(manifest, str(manifest_path))
        bundle = cls(path, manifest,
                     tokenizer_from_manifest(manifest["tokenizer"], f"{manifest_path}: field 'tokenizer'"))
        for role in manifest["graphs"]:
            if role not in OPTIONAL_ROLES.get(manifest["task"], ()):
                bundle._graphs[role] = bundle.graph_bytes(role, verify=verify)
        return bundle


def _read_manifest(path: Path, manifest_path: Path) -> dict:
    try:
        text = _manifest_bytes(manifest_path).decode("utf-8")
    except FileNotFoundError:
        raise BundleError(f"{path}: not a bundle (no {MANIFEST})") from None
    except IsADirectoryError:
        raise BundleError(f"{manifest_path}: is a directory, expected a JSON file") from None
    except UnicodeDecodeError as error:
        raise BundleError(f"{manifest_path}: corrupt manifest (not utf-8: {error.reason})") from None
    except OSError as error:
        raise BundleError(f"{manifest_path}: cannot read ({error.strerror})") from None
    try:
        return json.loads(text)
    except json.JSONDecodeError as error:
        raise BundleError(f"{manifest_path}: corrupt manifest ({error})") from None
    except RecursionError:
        raise BundleError(f"{manifest_path}: corrupt manifest (nested too deeply)") from None
    except ValueError as error:  # e.g. a number with more digits than Python converts
        raise BundleError(f"{manifest_path}: corrupt manifest ({error})") from None


def _manifest_bytes(manifest_path: Path) -> bytes:
    """The manifest's bytes: a regular file (a FIFO would block, a device never end) of at most
    MAX_MANIFEST_BYTES. Opened without blocking, then checked by what was opened, not by its name."""
    fd = os.open(manifest_path, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_CLOEXEC", 0))
    try:
        info = os.fstat(fd)
        if stat.S_ISDIR(info.st_mode):
            raise IsADirectoryError
        if not stat.S_ISREG(info.st_mode):
            raise BundleError(f"{manifest_path}: not a regular file (a device, pipe or socket); "
                              "a manifest is a JSON file")
    except BaseException:
        os.close(fd)
        raise
    with open(fd, "rb") as handle:
        data = handle.read(MAX_MANIFEST_BYTES + 1)
    if len(data) > MAX_MANIFEST_BYTES:
        raise BundleError(f"{manifest_path}: larger than {MAX_MANIFEST_BYTES // 2**20} MiB; not a manifest "
                          "(real ones are under 1 MiB, a 5-million-word vocabulary about 60 MiB)")
    return data


def write_manifest(folder: str | Path, manifest: dict) -> Path:
    """Validate, then write `folder/manifest.json`."""
    validate_manifest(manifest)
    target = Path(folder) / MANIFEST
    target.write_text(json.dumps(manifest, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    return target
