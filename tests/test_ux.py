"""Model listing, --version on every command, explicit onnxruntime session options."""

from __future__ import annotations

import json
import shutil
from importlib.metadata import version

import click
import numpy as np
import onnxruntime as ort
import pytest
from click.testing import CliRunner

import runtime
from runtime import session
from runtime.cli import main as score_main
from runtime.cli import translate_main


def test_list_models_shows_each_shipped_bundle_and_a_model_folder(tmp_path):
    shipped = runtime.shipped_bundles()
    assert {"imdb", "spa-eng"} <= set(shipped)
    mine = tmp_path / "my-model"
    shutil.copytree(shipped["imdb-int8"], mine)
    result = CliRunner().invoke(score_main, ["--list-models", "--model", str(mine)])
    assert result.exit_code == 0, result.output
    lines = {line.split()[0]: line for line in result.stdout.splitlines()[1:]}
    assert set(lines) == set(shipped) | {"my-model"}
    imdb = json.loads((shipped["imdb"] / "manifest.json").read_text())
    accuracy = imdb["metrics"]["attn_score_test"]["accuracy"]
    size = sum(f.stat().st_size for f in shipped["imdb"].glob("*.onnx")) / 1e6  # decimal MB, as the model cards
    assert lines["imdb"].split()[1:4] == ["sentiment", "en", f"{100 * accuracy:.2f}"]
    assert f"{size:.1f} MB" in lines["imdb"]
    assert "int8" in lines["my-model"] and str(mine) in lines["my-model"]
    bleu = json.loads((shipped["spa-eng"] / "manifest.json").read_text())["metrics"]["test"]["bleu"]
    assert "translation" in lines["spa-eng"] and f"BLEU {bleu:.2f}" in lines["spa-eng"]
    missing = CliRunner().invoke(score_main, [])
    assert missing.exit_code == 2 and "Missing argument 'INPUT" in missing.output


def test_version_on_every_command():
    from trainer.cli import main as export_main

    for command, name in ((score_main, "attn-score"), (translate_main, "attn-translate"), (export_main, "attn-export")):
        result = CliRunner().invoke(command, ["--version"])
        assert result.exit_code == 0 and result.stdout.strip() == f"{name} (attn-onnx) {version('attn-onnx')}"


def test_options_both_commands_share_are_declared_once():
    """An option attn-score and attn-translate declare word for word comes from runtime.cli.SHARED_OPTIONS
    (or the shared keep/engine decorators): a second copy would drift. Options that differ stay apart."""
    from runtime.cli import SHARED_OPTIONS

    def declared(command):
        return {p.name: (p.opts, p.secondary_opts, p.help, p.default, repr(p.type), p.show_default)
                for p in command.params if isinstance(p, click.Option) and p.name != "version"}

    score, translate = declared(score_main), declared(translate_main)
    same = {name for name in score.keys() & translate.keys() if score[name] == translate[name]}
    assert same == set(SHARED_OPTIONS) | {"keep_columns", "keep_all", "engine", "address", "cpus_per_worker"}
    assert score["model"] != translate["model"] and score["workers"] != translate["workers"]  # each command's own


def test_session_options_reach_onnxruntime():
    assert not hasattr(session, "GRAPH_OPTIMIZATION") and not hasattr(session, "MEMORY_ARENA")  # no module switches
    texts = ["a wonderful film", "dreadful and boring", ""]
    default = runtime.load("imdb")
    tuned = runtime.load("imdb", session_options={"threads": 1, "optimization": "basic", "memory_arena": False})
    used = tuned._session.get_session_options()
    assert used.intra_op_num_threads == 1 and not used.enable_cpu_mem_arena
    assert used.graph_optimization_level == ort.GraphOptimizationLevel.ORT_ENABLE_BASIC
    assert default._session.get_session_options().enable_cpu_mem_arena
    np.testing.assert_allclose(tuned.predict(texts), default.predict(texts), atol=1e-5)
    overridden = runtime.load("imdb", threads=2, session_options=runtime.SessionOptions(threads=1, optimization="off"))
    assert overridden._session.get_session_options().intra_op_num_threads == 2
    with pytest.raises(ValueError, match="unknown session option"):
        runtime.load("imdb", session_options={"arena": False})
    with pytest.raises(ValueError, match="optimization must be one of"):
        runtime.SessionOptions(optimization="fast")


def test_cli_session_options(tmp_path):
    source = tmp_path / "in.csv"
    source.write_text("text\nloved it\nhated it\n")
    base = CliRunner().invoke(score_main, [str(source), "--model", "imdb-int8"])
    tuned = CliRunner().invoke(score_main, [str(source), "--model", "imdb-int8", "--graph-optimization", "off",
                                            "--no-memory-arena", "--threads", "1", "--workers", "1"])
    assert base.exit_code == 0 and tuned.exit_code == 0, tuned.output
    def probabilities(result):
        return [float(line.split(",")[1]) for line in result.stdout.splitlines()[1:]]

    np.testing.assert_allclose(probabilities(tuned), probabilities(base), atol=1e-5)
    for bad in (["--graph-optimization", "fast"], ["--threads", "-1"]):
        assert CliRunner().invoke(score_main, [str(source), "--model", "imdb-int8", *bad]).exit_code == 2
