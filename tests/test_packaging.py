"""What the wheel carries: the runtime, the trainer, and only the English bundles (issue 17: the
plain install carried 74 MB of bundles; the Korean ensemble and the translator stay in the checkout)."""

import os
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

import runtime

REPO = Path(__file__).resolve().parents[1]
BUNDLE_FILES = ("model.onnx", "model_text.onnx", "encoder.onnx", "decoder_step.onnx", "manifest.json", "MODEL_CARD.md")


def _copy_with_stub_bundles(target: Path) -> None:
    """The project's build inputs, with every artifacts/ file replaced by a few bytes (the test is
    about which files the wheel takes, not their 74 MB)."""
    shutil.copy(REPO / "pyproject.toml", target)
    shutil.copy(REPO / "README.md", target)
    for package in ("runtime", "trainer"):
        shutil.copytree(REPO / package, target / package, ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
    for file in (REPO / "artifacts").rglob("*"):
        if file.is_file():
            stub = target / file.relative_to(REPO)
            stub.parent.mkdir(parents=True, exist_ok=True)
            stub.write_text("stub")


@pytest.mark.slow
def test_wheel_carries_the_english_bundles_only(tmp_path):
    source = tmp_path / "src"
    source.mkdir()
    _copy_with_stub_bundles(source)
    done = subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q", str(source),
                           "-w", str(tmp_path / "dist")], capture_output=True, text=True, cwd=tmp_path,
                          env={**os.environ, "PIP_NO_INPUT": "1"})
    assert done.returncode == 0, done.stderr
    (wheel,) = (tmp_path / "dist").glob("attn_onnx-*.whl")
    names = zipfile.ZipFile(wheel).namelist()
    bundles = sorted(name.removeprefix("runtime/bundles/") for name in names if name.startswith("runtime/bundles/"))
    assert bundles == ["imdb-bilstm-attention-int8/manifest.json", "imdb-bilstm-attention-int8/model.onnx",
                       "imdb-bilstm-attention-int8/model_text.onnx",
                       "imdb-bilstm-attention/MODEL_CARD.md", "imdb-bilstm-attention/manifest.json",
                       "imdb-bilstm-attention/model.onnx", "imdb-bilstm-attention/model_text.onnx"]
    sources = {str(path.relative_to(REPO)) for package in ("runtime", "trainer")
               for path in (REPO / package).rglob("*.py")}
    assert sources - set(names) == set(), "a package is missing from pyproject.toml's packages list"
    assert "runtime/cli/templates/report.html.j2" in names  # --report's template (package-data)
    # the real size of what the wheel carries
    carried = sum((REPO / "artifacts" / name).stat().st_size for name in bundles)
    # the English fp32 + int8 bundles with their text graphs (28.5 MB: a text graph holds its own copy of the
    # weights, so one file is the whole model); nsmc + spa-eng would add 67 MB
    assert carried < 30e6
    assert sorted(runtime.IN_WHEEL) == sorted(n for n, f in runtime.SHIPPED.items() if f"{f}/manifest.json" in bundles)

    # installed from the wheel: the English models are found, the others are refused with the way to get them
    site = tmp_path / "site"
    done = subprocess.run([sys.executable, "-m", "pip", "install", "--no-deps", "--no-index", "-q", "--target",
                           str(site), str(wheel)], capture_output=True, text=True, cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    code = ("import runtime\nprint(sorted(runtime.shipped_bundles()))\ntry:\n    runtime.load('nsmc')\n"
            "except runtime.BundleError as error:\n    print(error)\n")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=tmp_path,
                          env={**os.environ, "PYTHONPATH": str(site)})
    assert done.returncode == 0, done.stderr
    listed, message = done.stdout.splitlines()
    assert listed == "['imdb', 'imdb-int8']"
    assert "'nsmc' is not in this install" in message and "pip install -e ." in message
    assert "artifacts/nsmc-bilstm-attention" in message

    # issue 30 item 5: the README's first commands, `pip install .` then attn-translate inside the checkout: the
    # wheel's own runtime (not the checkout's) finds the translator in the checkout's artifacts/
    code = ("import runtime, sys\nprint(runtime.__file__)\nfrom runtime.cli import translate_main\n"
            "translate_main(['sentences.txt', '--no-progress'])\n")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=REPO / "examples",
                          env={**os.environ, "PYTHONPATH": str(site)})
    assert done.returncode == 0, done.stderr
    imported, *translations = done.stdout.splitlines()
    assert imported.startswith(str(site)), imported
    assert len(translations) == len((REPO / "examples" / "sentences.txt").read_text(encoding="utf-8").splitlines())


def test_checkout_finds_every_shipped_bundle():
    """Running from the repository (or an editable install of it) uses artifacts/: all four models."""
    assert set(runtime.shipped_bundles()) == set(runtime.SHIPPED)


def test_an_install_finds_the_artifacts_of_the_checkout_it_runs_in(tmp_path, monkeypatch):
    """Issue 30 item 5: the artifacts/ of the attn-onnx checkout holding the working directory (or a
    parent of it) are found; another project's artifacts/ are not."""
    repo = tmp_path / "clone"
    (repo / "artifacts" / "spa-eng-attention").mkdir(parents=True)
    (repo / "examples").mkdir()
    (repo / "pyproject.toml").write_text('[project]\nname = "attn-onnx"\nversion = "0.1.0"\n')
    assert runtime.checkout_artifacts(repo / "examples") == (repo / "artifacts").resolve()
    monkeypatch.chdir(repo / "examples")
    assert runtime.checkout_artifacts() == (repo / "artifacts").resolve()
    other = tmp_path / "other"
    (other / "artifacts").mkdir(parents=True)
    (other / "pyproject.toml").write_text('[project]\nname = "not-attn-onnx"\n')
    assert runtime.checkout_artifacts(other) is None and runtime.checkout_artifacts(tmp_path) is None
