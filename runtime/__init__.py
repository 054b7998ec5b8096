"""attn-onnx runtime: score text with exported attention models. Needs onnxruntime, numpy, click.

    import runtime
    model = runtime.load()                  # the shipped IMDB bundle
    model.predict(["A wonderful, moving film."])   # float32 array, P(positive): [0.9176...]
    model.explain(["A wonderful, moving film."], top_k=2)   # [[('film', 0.302...), ('moving', 0.269...)]]
"""

from __future__ import annotations

import os
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


def _shipped_root() -> Path:
    """Where the shipped bundles live: `runtime/bundles` in an install (mapped from the repository's
    `artifacts/` by pyproject.toml), or `artifacts/` beside the package in a source checkout."""
    installed = Path(__file__).resolve().parent / "bundles"
    return installed if installed.is_dir() else Path(__file__).resolve().parent.parent / "artifacts"


def shipped_bundles() -> dict[str, Path]:
    """Short name -> folder of each shipped bundle that is installed."""
    root = _shipped_root()
    return {name: root / folder for name, folder in SHIPPED.items() if (root / folder / "manifest.json").is_file()}


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
        raise BundleError(
            f"shipped model {name!r} is not in this install (looked in {_shipped_root()}): the wheel carries the "
            f"English models only ({', '.join(IN_WHEEL)}) to stay light; use a checkout of the repository "
            f"(pip install -e .) or pass the bundle folder (--model path/to/artifacts/{SHIPPED[name]})"
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
