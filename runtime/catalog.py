"""The models a user can run: the shipped bundles (their short names, where they are installed, how
a name or a path resolves to a folder) and any bundle folder, with task, languages, headline
accuracy, precision and size (`attn-score --list-models`), and the package version."""

from __future__ import annotations

import os
import re
from pathlib import Path

from runtime.bundle import Bundle, BundleError

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


# Shipped bundles predate a `languages` manifest field: what their data is in.
SHIPPED_LANGUAGES = {"imdb": "en", "imdb-int8": "en", "nsmc": "ko", "nsmc-int8": "ko", "nsmc-ensemble": "ko",
                     "spa-eng": "es -> en", "fra-eng": "fr -> en"}


def version() -> str:
    """The installed attn-onnx version ('unknown' in a checkout that was never installed)."""
    from importlib.metadata import PackageNotFoundError
    from importlib.metadata import version as installed

    try:
        return installed("attn-onnx")
    except PackageNotFoundError:
        return "unknown"


def _score(manifest: dict) -> str:
    metrics = manifest.get("metrics") or {}
    if manifest.get("task") == "translation":
        test = metrics.get("test") or {}
        return f"BLEU {test['bleu']:.2f} (test)" if "bleu" in test else "-"
    for key, where in (("attn_score_test", "test, attn-score"), ("test_accuracy", "test"),
                       ("validation_accuracy", "validation")):
        value = metrics.get(key)
        if isinstance(value, dict):
            value = value.get("accuracy")
        if isinstance(value, (int, float)):
            return f"{100 * value:.2f} % ({where})"
    return "-"


def languages_of(manifest: dict, name: str | None = None) -> str | None:
    """What a bundle's data is in: its manifest's `languages`, else the shipped catalog's entry for the
    short name `name`; None if neither says."""
    languages = manifest.get("languages") or SHIPPED_LANGUAGES.get(name or "")
    return ", ".join(languages) if isinstance(languages, (list, tuple)) else languages


def graphs_bytes(folder: str | Path) -> int:
    """What a bundle's ONNX graphs weigh on disk (every *.onnx in the folder), in bytes."""
    return sum(f.stat().st_size for f in Path(folder).glob("*.onnx"))


def describe(path: str | Path, name: str | None = None) -> dict:
    """One row of the listing for a bundle folder (a broken folder says why instead of failing)."""
    folder = Path(path)
    row = {"name": name or folder.name, "path": str(folder)}
    try:
        bundle = Bundle.load(folder, verify=False)
    except BundleError as error:
        return {**row, "task": "-", "languages": "-", "score": "-", "precision": "-",
                "size": "-", "problem": str(error)}
    manifest = bundle.manifest
    size = graphs_bytes(folder)  # shown in decimal MB, as the model cards and the README give it
    return {**row, "task": bundle.task, "languages": languages_of(manifest, name) or "-", "score": _score(manifest),
            "precision": manifest.get("precision", "-"), "size": f"{size / 1e6:.1f} MB"}


def listing(extra: str | None = None) -> list[dict]:
    """Every installed shipped bundle, then `extra` (a --model folder or short name) if not among them."""
    rows = [describe(folder, name) for name, folder in shipped_bundles().items()]
    if extra:
        folder = resolve_bundle_path(extra)
        if all(Path(row["path"]).resolve() != folder.resolve() for row in rows):
            rows.append(describe(folder, str(extra)))  # a folder is named by its path: never a second 'imdb'
    return rows


def table(rows: list[dict]) -> str:
    columns = [("name", "name"), ("task", "task"), ("languages", "languages"), ("score", "accuracy / BLEU"),
               ("precision", "precision"), ("size", "size"), ("path", "folder")]
    cells = [[title for _, title in columns]] + [[str(row[key]) for key, _ in columns] for row in rows]
    widths = [max(len(line[i]) for line in cells) for i in range(len(columns))]
    lines = ["  ".join(cell.ljust(width) for cell, width in zip(line, widths)).rstrip() for line in cells]
    lines += [f"{row['name']}: {row['problem']}" for row in rows if "problem" in row]
    return "\n".join(lines)
