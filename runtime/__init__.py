"""attn-onnx runtime: score text with exported attention models. Needs onnxruntime, numpy, click.

    >>> import runtime
    >>> model = runtime.load()  # the shipped IMDB bundle
    >>> model.predict(["A wonderful, moving film.", "Dull and far too long."]).round(2)  # float32, P(positive)
    array([1..., 0.0...], dtype=float32)
    >>> model.predict_labels("A wonderful, moving film.")  # a bare str is one text: one answer
    'positive'
    >>> model.explain(["A wonderful, moving film."], top_k=2)  # the most attended words
    [[('wonderful', 0.3...), ('moving', 0.2...)]]
    >>> runtime.load("spa-eng").translate("¿Dónde está la estación?").text  # spa-eng: from a checkout
    'Where is the station?'

(tests/test_readme.py runs these lines as a doctest: what they show is what they print.)
"""

from __future__ import annotations

import os
import re
from pathlib import Path

from runtime.bundle import Bundle, BundleError
from runtime.classifier import DEFAULT_BATCH_TOKENS, Classifier
from runtime.io import InputError
from runtime.session import ProviderError, SessionOptions, available_providers
from runtime.translator import Translation, Translator

__all__ = [
    "load",
    "shipped_bundles",
    "Classifier",
    "Translator",
    "Translation",
    "Bundle",
    "BundleError",
    "InputError",
    "ProviderError",
    "SessionOptions",
    "available_providers",
]

DEFAULT_BUNDLE = "imdb"
# short name -> folder name under the shipped bundles folder
SHIPPED = {
    "imdb": "imdb-bilstm-attention",
    "imdb-int8": "imdb-bilstm-attention-int8",
    "nsmc": "nsmc-bilstm-attention",
    "nsmc-int8": "nsmc-bilstm-attention-int8",
    "nsmc-ensemble": "nsmc-bilstm-attention-ensemble",
    "spa-eng": "spa-eng-attention",
    "fra-eng": "fra-eng-attention",
}

# short names shipped once and replaced: asking for one says what to use instead
RETIRED = {
    "nsmc-small": "'nsmc' (since 2026-11-30 'nsmc' is itself one distilled network, more accurate; the 5-network "
                  "ensemble it was distilled from is 'nsmc-ensemble')",
    "nsmc-small-int8": "'nsmc-int8' (the int8 variant of 'nsmc', now one distilled network)",
}

IN_WHEEL = ("imdb", "imdb-int8")  # what `pip install .` carries (pyproject.toml package-data); the rest: a checkout


def _shipped_roots() -> list[Path]:
    """Where the shipped bundles live, in order: `runtime/bundles` in an install (mapped from the
    repository's `artifacts/` by pyproject.toml: the English models only), `artifacts/` beside the
    package in a source checkout, and the `artifacts/` of the checkout the working directory is in
    (an installed wheel run inside the repository finds the models the wheel leaves out)."""
    package = Path(__file__).resolve().parent
    roots = [package / "bundles", package.parent / "artifacts", checkout_artifacts()]
    return list(dict.fromkeys(root.resolve() for root in roots if root is not None and root.is_dir()))


def checkout_artifacts(start: str | Path | None = None) -> Path | None:
    """The `artifacts/` folder of the attn-onnx checkout holding `start` (default: the working
    directory) or one of its parents: a folder with `artifacts/` and a pyproject.toml naming the
    project attn-onnx. None outside one."""
    try:
        here = Path.cwd() if start is None else Path(start).resolve()
    except OSError:  # the working directory was removed
        return None
    for folder in (here, *here.parents):
        project = folder / "pyproject.toml"
        if (folder / "artifacts").is_dir() and project.is_file() and _names_this_project(project):
            return folder / "artifacts"
    return None


def _names_this_project(pyproject: Path) -> bool:
    try:
        text = pyproject.read_text(encoding="utf-8", errors="replace")
    except OSError:
        return False
    return re.search(r'^name\s*=\s*["\']attn-onnx["\']', text, re.M) is not None


def shipped_bundles() -> dict[str, Path]:
    """Short name -> folder of each shipped bundle that is installed or in the checkout (see `_shipped_roots`)."""
    roots = _shipped_roots()
    found = {}
    for name, folder in SHIPPED.items():
        root = next((root for root in roots if (root / folder / "manifest.json").is_file()), None)
        if root is not None:
            found[name] = root / folder
    return found


def _is_path(name: str) -> bool:
    """A path names a folder: it holds a separator or starts with '.' ('./imdb', '../b', '/opt/b', '~/b')."""
    separators = {"/", os.sep, os.altsep} - {None}
    return any(sep in name for sep in separators) or name.startswith((".", "~"))


def resolve_bundle_path(path: str | Path | None) -> Path:
    """None -> the default shipped bundle; a short name ('imdb') -> that shipped bundle, never a folder
    of the working directory; a path ('./imdb', '/opt/bundle', a Path) -> that folder."""
    if isinstance(path, Path):
        return path
    name = DEFAULT_BUNDLE if path is None else str(path)
    if _is_path(name):
        folder = Path(name).expanduser()
        if folder.exists() and not folder.is_dir():
            raise BundleError(f"{name}: is a file; a bundle is the folder that holds manifest.json"
                              + (f" (here: {folder.parent})" if (folder.parent / "manifest.json").is_file() else ""))
        if not folder.is_dir():
            raise BundleError(f"{name}: no such bundle folder")
        return folder
    installed = shipped_bundles()
    if name in installed:
        return installed[name]
    listed = ", ".join(f"{short} ({'installed' if short in installed else 'not installed'})" for short in SHIPPED)
    if name in SHIPPED:
        looked = " and ".join(map(str, _shipped_roots())) or "nowhere"
        outside = "" if checkout_artifacts() else "; the working directory is in no attn-onnx checkout"
        raise BundleError(
            f"shipped model {name!r} is not in this install (looked in {looked}{outside}): the wheel carries "
            f"the English models only ({', '.join(IN_WHEEL)}) to stay light; "
            f"run inside a checkout of the repository (or pip install -e . there) or pass the bundle folder "
            f"(--model path/to/artifacts/{SHIPPED[name]})"
        )
    if name in RETIRED:
        raise BundleError(f"shipped model {name!r} was retired: use {RETIRED[name]}")
    hint = f"; for the folder {name!r} here, write ./{name}" if Path(name).is_dir() else ""
    raise BundleError(f"{name}: not a shipped model name (a folder is given as a path, e.g. ./{name}); "
                      f"the shipped models are: {listed}{hint}")


def load(
    path: str | Path | None = None,
    *,
    provider: str = "auto",
    threads: int = 0,
    batch_tokens: int = DEFAULT_BATCH_TOKENS,
    verify: bool = True,
    session_options: SessionOptions | dict | None = None,
) -> Classifier | Translator:
    """Load a bundle (a folder, a shipped short name such as 'imdb', or None for the default):
    a Classifier for a sentiment bundle, a Translator for a translation bundle.

    provider: 'auto' (CUDA when available and working, else CPU), or one of cpu, cuda, tensorrt,
    openvino, coreml, dml (an unavailable explicit provider raises ProviderError).
    threads: onnxruntime intra-op threads (0 = onnxruntime's default).
    batch_tokens: token budget per batch (rows x padded length).
    verify: check each graph's sha256 against the manifest.
    session_options: onnxruntime settings, `runtime.SessionOptions(threads=1, optimization="basic",
    memory_arena=False)` or a dict of those fields (a non-zero `threads` above overrides its threads).
    """
    SessionOptions.of(session_options, threads)  # a bad option is a ValueError here, not "not a loadable graph"
    bundle = Bundle.load(resolve_bundle_path(path), verify=verify)
    if bundle.task == "translation":
        return Translator(bundle, provider=provider, threads=threads, session_options=session_options)
    return Classifier(bundle, provider=provider, threads=threads, batch_tokens=batch_tokens, session_options=session_options)
