"""The models a user can run: shipped bundles and any bundle folder, with task, languages,
headline accuracy, precision and size (`attn-score --list-models`), and the package version."""

from __future__ import annotations

from pathlib import Path

from runtime.bundle import Bundle, BundleError

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
    for key, where in (("attn_score_test", "test, attn-score"), ("test_accuracy", "test"), ("validation_accuracy", "validation")):
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
        return {**row, "task": "-", "languages": "-", "score": "-", "precision": "-", "size": "-", "problem": str(error)}
    manifest = bundle.manifest
    size = graphs_bytes(folder)  # shown in decimal MB, as the model cards and the README give it
    return {**row, "task": bundle.task, "languages": languages_of(manifest, name) or "-", "score": _score(manifest),
            "precision": manifest.get("precision", "-"), "size": f"{size / 1e6:.1f} MB"}


def listing(extra: str | None = None) -> list[dict]:
    """Every installed shipped bundle, then `extra` (a --model folder or short name) if not among them."""
    import runtime

    rows = [describe(folder, name) for name, folder in runtime.shipped_bundles().items()]
    if extra:
        folder = runtime.resolve_bundle_path(extra)
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
