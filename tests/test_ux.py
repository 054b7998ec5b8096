"""Model listing, --version on every command, explicit onnxruntime session options."""

from __future__ import annotations

import json
import shutil
from importlib.metadata import version
from pathlib import Path

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
    assert set(lines) == set(shipped) | {str(mine)}  # a folder is named by its path
    imdb = json.loads((shipped["imdb"] / "manifest.json").read_text())
    accuracy = imdb["metrics"]["attn_score_test"]["accuracy"]
    size = sum(f.stat().st_size for f in shipped["imdb"].glob("*.onnx")) / 1e6  # decimal MB, as the model cards
    assert lines["imdb"].split()[1:4] == ["sentiment", "en", f"{100 * accuracy:.2f}"]
    assert f"{size:.1f} MB" in lines["imdb"]
    assert "int8" in lines[str(mine)]
    bleu = json.loads((shipped["spa-eng"] / "manifest.json").read_text())["metrics"]["test"]["bleu"]
    assert "translation" in lines["spa-eng"] and f"BLEU {bleu:.2f}" in lines["spa-eng"]
    missing = CliRunner().invoke(score_main, [])
    assert missing.exit_code == 2 and "Missing argument 'INPUT" in missing.output


def test_list_models_names_a_folder_by_its_path_not_a_shipped_name(tmp_path):
    """Issue 30 item 10: a user bundle folder called imdb is not a second row named imdb."""
    mine = tmp_path / "imdb"
    shutil.copytree(runtime.shipped_bundles()["imdb-int8"], mine)
    for given in (str(mine), f"./{mine.relative_to(tmp_path)}"):
        with CliRunner().isolated_filesystem(temp_dir=tmp_path) as here:
            shutil.copytree(mine, Path(here) / "imdb")
            result = CliRunner().invoke(score_main, ["--list-models", "--model", given])
        assert result.exit_code == 0, result.output
        names = [line.split()[0] for line in result.stdout.splitlines()[1:]]
        assert names.count("imdb") == 1 and names[-1] == given, names


def test_a_session_option_typo_is_a_usage_error_naming_the_valid_ones():
    """Issue 30 item 7: the caller's typo is a ValueError naming it and the valid options, not a
    BundleError blaming the graph."""
    with pytest.raises(ValueError) as caught:
        runtime.load("imdb", session_options={"thread": 2})
    assert not isinstance(caught.value, runtime.BundleError), caught.value
    message = str(caught.value)
    assert "'thread'" in message and "did you mean 'threads'" in message and "model.onnx" not in message
    assert "threads, inter_op_threads, optimization, memory_arena" in message
    with pytest.raises(TypeError, match="memory_arena must be bool"):
        runtime.load("imdb", session_options={"memory_arena": "no"})


def test_version_on_every_command():
    from trainer.cli import main as export_main

    for command, name in ((score_main, "attn-score"), (translate_main, "attn-translate"), (export_main, "attn-export")):
        result = CliRunner().invoke(command, ["--version"])
        assert result.exit_code == 0 and result.stdout.strip() == f"{name} (attn-onnx) {version('attn-onnx')}"


def test_options_both_commands_share_are_declared_once():
    """An option attn-score and attn-translate declare word for word comes from runtime.cli.SHARED_OPTIONS
    (or the shared keep/engine decorators): a second copy would drift. Options that differ stay apart."""
    from runtime.cli.options import SHARED_OPTIONS

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
    with pytest.raises(ValueError, match="unknown option 'arena'"):
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


def _read_back(path: Path) -> list[dict]:
    """The rows of an output file, read by its real format (never by our own writer's code)."""
    import csv
    import gzip

    import pyarrow.parquet as pq

    name = path.name.removesuffix(".gz")
    if name.endswith(".parquet"):
        return pq.read_table(path).to_pylist()
    opened = gzip.open(path, "rt", encoding="utf-8") if path.name.endswith(".gz") else open(path, encoding="utf-8")
    with opened as handle:
        text = handle.read()
    if name.endswith(".jsonl"):
        return [json.loads(line) for line in text.splitlines()]
    if name.endswith(".txt"):
        return [{"translation": line} for line in text.splitlines()]
    return list(csv.DictReader(text.splitlines(), delimiter="\t" if name.endswith(".tsv") else ","))


@pytest.mark.parametrize("command, source, column", [(score_main, "reviews.csv", "probability"),
                                                     (translate_main, "sentences.txt", "translation")])
@pytest.mark.parametrize("suffix", [".csv", ".tsv", ".jsonl", ".parquet", ".csv.gz", ".jsonl.gz", ".tsv.gz"])
def test_the_output_format_follows_the_suffix(command, source, column, suffix, tmp_path):
    """Issue 30 item 2: -o x.parquet is Parquet, -o x.jsonl JSON lines, ... for both commands; attn-translate
    writes Parquet locally too."""
    examples = Path(__file__).resolve().parents[1] / "examples"
    out = tmp_path / f"out{suffix}"
    result = CliRunner().invoke(command, [str(examples / source), "-o", str(out)])
    assert result.exit_code == 0, result.output
    rows = _read_back(out)
    lines = (examples / source).read_text(encoding="utf-8").splitlines()
    assert len(rows) == len(lines) - (source == "reviews.csv") and any(row[column] not in (None, "") for row in rows)
    assert set(rows[0]) >= {"id", column}


@pytest.mark.parametrize("command, source", [(score_main, "reviews.csv"), (translate_main, "sentences.txt")])
@pytest.mark.parametrize("given, output", [("csv", "out.jsonl"), ("jsonl", "out.parquet"), ("parquet", "out.csv.gz"),
                                           ("csv", "out.parquet.gz"), ("tsv", "out.csv")])
def test_a_format_the_suffix_contradicts_is_a_one_line_usage_error(command, source, given, output, tmp_path):
    examples = Path(__file__).resolve().parents[1] / "examples"
    result = CliRunner().invoke(command, [str(examples / source), "--format", given, "-o", str(tmp_path / output)])
    assert result.exit_code == 2, result.output
    assert len(result.output.strip().splitlines()) == 1 and output in result.output, result.output
    assert list(tmp_path.iterdir()) == []  # nothing written
    gzipped = CliRunner().invoke(command, [str(examples / source), "-o", str(tmp_path / "x.parquet.gz")])
    assert gzipped.exit_code == 2 and "Parquet compresses itself" in gzipped.output


@pytest.mark.parametrize("command", [score_main, translate_main])
def test_jsonl_ids_keep_their_json_type_csv_stays_text(command, tmp_path):
    """Issue 30 item 4: {"id": 17} comes out as "id": 17 in JSONL (a string id stays a string); CSV is text."""
    source = tmp_path / "in.jsonl"
    ids, texts = [17, "a-17", 2.5, True], ["Hola amigo", "Un buen día", "El perro", "La casa"]
    source.write_text("".join(json.dumps({"id": i, "text": t}) + "\n" for i, t in zip(ids, texts)), encoding="utf-8")
    result = CliRunner().invoke(command, [str(source), "-o", str(tmp_path / "out.jsonl")])
    assert result.exit_code == 0, result.output
    assert [row["id"] for row in _read_back(tmp_path / "out.jsonl")] == ids
    assert all(type(row["id"]) is type(i) for row, i in zip(_read_back(tmp_path / "out.jsonl"), ids))
    result = CliRunner().invoke(command, [str(source), "-o", str(tmp_path / "out.csv")])
    assert [row["id"] for row in _read_back(tmp_path / "out.csv")] == ["17", "a-17", "2.5", "true"]
