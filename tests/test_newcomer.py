"""A newcomer's first hour (issue 17): what a new user meets first, on the shipped bundles
(runtime only, no training): one explanation format, plurals, empty translations, ..."""

import csv
import io
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner

import runtime
from runtime.cli import main as score_cli
from runtime.cli import translate_main

REPO = Path(__file__).resolve().parents[1]


def run(command, args, input_text=None):
    return CliRunner().invoke(command, args, input=input_text)


def read_csv(text):
    return list(csv.DictReader(io.StringIO(text)))


# === one explanation format ===
def test_explanation_is_the_same_token_weight_objects_in_csv_and_jsonl():
    text = "text\n\"A wonderful, moving film.\"\n"
    as_csv = run(score_cli, ["-", "--explain", "2"], text)
    as_jsonl = run(score_cli, ["-", "--explain", "2", "--format", "jsonl"], text)
    assert as_csv.exit_code == 0 and as_jsonl.exit_code == 0, as_csv.output + as_jsonl.output
    from_csv = json.loads(read_csv(as_csv.stdout)[0]["explanation"])
    from_jsonl = json.loads(as_jsonl.stdout)["explanation"]
    assert from_csv == from_jsonl
    assert len(from_csv) == 2 and all(set(item) == {"token", "weight"} for item in from_csv)
    assert all(item["token"] in ("wonderful", "moving", "film", "a") for item in from_csv)


# === plurals ===
def test_summary_lines_use_singular_for_one():
    one = run(score_cli, ["-"], "text\nfine\n")
    assert one.exit_code == 0 and "scored 1 row in" in one.stderr
    two = run(score_cli, ["-"], "text\nfine\nbad\n")
    assert "scored 2 rows in" in two.stderr
    translated = run(translate_main, ["-", "--beam-size", "1"], "Hola.\n")
    assert translated.exit_code == 0 and "translated 1 sentence in" in translated.stderr


# === empty source, empty translation ===
def test_empty_source_line_gives_an_empty_translation():
    result = run(translate_main, ["-", "--beam-size", "2"], "Hola.\n\n   \nGracias.\n")
    assert result.exit_code == 0, result.output
    lines = result.stdout.split("\n")
    assert lines[1:3] == ["", ""] and lines[0] and lines[3]
    import runtime

    translator = runtime.load("spa-eng", provider="cpu")
    for beam in (1, 3):
        empty = translator.translate(["", "Hola."], beam_size=beam, return_attention=True)[0]
        assert (empty.text, empty.tokens, empty.score, empty.source_tokens) == ("", [], 0.0, [])
        assert empty.attention.shape == (1, 0)


# === one stdin / one-column rule, both commands ===
@pytest.mark.parametrize("command", ["score", "translate"])
@pytest.mark.parametrize("given", ["great\nawful\n", "Great movie\nTerrible movie\n", "Muy bien, gracias\nNo\n"])
def test_stdin_without_a_header_is_one_text_per_line_for_both_commands(command, given):
    args = ["-", "--format", "jsonl"] + (["--beam-size", "1"] if command == "translate" else [])
    result = run(score_cli if command == "score" else translate_main, args, given)
    assert result.exit_code == 0, result.output
    records = [json.loads(line) for line in result.stdout.splitlines()]
    assert [r["id"] for r in records] == ["1", "2"]  # line 1 is a text, never a header
    if command == "translate":
        assert [r["source"] for r in records] == given.splitlines()


@pytest.mark.parametrize("command", ["score", "translate"])
def test_stdin_table_with_a_header_naming_the_text_column(command):
    args = ["-", "--format", "jsonl"] + (["--beam-size", "1"] if command == "translate" else [])
    cli = score_cli if command == "score" else translate_main
    table = run(cli, args, 'id,text\nx7,"Hola, amigo"\nx8,Gracias\n')
    assert table.exit_code == 0, table.output
    assert [json.loads(line)["id"] for line in table.stdout.splitlines()] == ["x7", "x8"]
    jsonl = run(cli, args, '{"id": "j1", "text": "Hola"}\n')
    assert jsonl.exit_code == 0 and json.loads(jsonl.stdout)["id"] == "j1"


def test_one_column_csv_file_whose_line_1_is_a_text_keeps_it(tmp_path):
    source = tmp_path / "reviews.csv"
    source.write_text('great\n"awful, really"\n')
    result = run(score_cli, [str(source)])
    assert result.exit_code == 0, result.output
    assert [r["id"] for r in read_csv(result.stdout)] == ["1", "2"]
    assert "every line is a text, line 1 included" in result.stderr
    named = tmp_path / "named.csv"
    named.write_text('text\n"awful, really"\n')
    assert len(read_csv(run(score_cli, [str(named)]).stdout)) == 1


# === --model foo names the shipped models ===
@pytest.mark.parametrize("command", ["score", "translate"])
def test_unknown_model_error_lists_the_shipped_models(command, tmp_path):
    cli = score_cli if command == "score" else translate_main
    result = run(cli, ["-", "--model", "foo"], "Hola\n")
    assert result.exit_code == 1 and "Traceback" not in result.output
    line = result.output.strip()
    assert len(line.splitlines()) == 1 and "foo" in line
    for name in runtime.SHIPPED:
        assert name in line


@pytest.mark.parametrize("command", ["score", "translate"])
def test_a_file_given_as_model_names_the_folder_to_give(command):
    cli = score_cli if command == "score" else translate_main
    folder = runtime.shipped_bundles()["imdb" if command == "score" else "spa-eng"]
    graph = next(folder.glob("*.onnx"))
    result = run(cli, ["-", "--model", str(graph)], "Hola\n")
    assert result.exit_code == 1 and "Traceback" not in result.output
    assert (result.output.strip()
            == f"Error: {graph}: is a file; a bundle is the folder that holds manifest.json (here: {folder})")


# === attn-export in the light install ===
BLOCK_TRAIN_EXTRA = """
import sys
class _Missing:
    def find_spec(self, name, path=None, target=None):
        if name.split('.')[0] in ('tensorflow', 'keras', 'tf2onnx', 'onnx'):
            raise ModuleNotFoundError(f"No module named {name!r}", name=name)
sys.meta_path.insert(0, _Missing())
sys.argv = ['attn-export'] + sys.argv[1:]
from trainer.cli import main
main()
"""


@pytest.mark.parametrize("command", ["train", "convert", "combine", "train-translator"])
def test_attn_export_without_the_train_extra_is_one_line(command, tmp_path):
    args = {"train": ["--train-data", "x.csv", "--out", str(tmp_path / "o")],
            "convert": ["m.keras", "--tokenizer", "t.json", "--out", str(tmp_path / "o")],
            "combine": ["a", "b", "--out", str(tmp_path / "o")],
            "train-translator": ["--pairs", "p.tsv", "--out", str(tmp_path / "o")]}[command]
    done = subprocess.run([sys.executable, "-c", BLOCK_TRAIN_EXTRA, command, *args], capture_output=True, text=True,
                          env={**os.environ, "PYTHONPATH": str(REPO)}, cwd=tmp_path)
    assert done.returncode == 1, done.stderr
    assert "Traceback" not in done.stderr and len(done.stderr.strip().splitlines()) == 1, done.stderr
    assert f"attn-export {command} needs the training extra" in done.stderr
    assert "pip install 'attn-onnx[train]'" in done.stderr
    helped = subprocess.run([sys.executable, "-c", BLOCK_TRAIN_EXTRA, command, "--help"], capture_output=True,
                            text=True, env={**os.environ, "PYTHONPATH": str(REPO)})
    assert helped.returncode == 0 and "Usage: attn-export" in helped.stdout


# === training: quiet TensorFlow, and a warning for a model at chance ===
def test_chance_warning_on_constructed_figures():
    from trainer.console import chance_warning

    balanced = [0] * 48 + [1] * 52
    assert ("within 2 points" in chance_warning(0.53, balanced)
            and "majority class 1 (0.5200" in chance_warning(0.53, balanced))
    assert chance_warning(0.54, balanced) is not None  # exactly 2 points: still warned
    assert chance_warning(0.5401, balanced) is None and chance_warning(0.88, balanced) is None
    skewed = [1] * 90 + [0] * 10
    assert chance_warning(0.90, skewed) and chance_warning(0.10, skewed) and chance_warning(0.95, skewed) is None


@pytest.mark.slow
def test_real_training_run_is_quiet_and_warns_at_chance(tmp_path):
    """The real entry point in a fresh process: no TensorFlow C++ start-up lines on stderr, and a
    model that cannot beat the majority class (every text identical, 90 % one label) is warned about."""
    data = tmp_path / "same.csv"
    data.write_text("text,label\n" + "".join(f"the same words,{int(i % 10 != 0)}\n" for i in range(60)))
    done = subprocess.run(
        [sys.executable, "-m", "trainer.cli", "train", "--train-data", str(data), "--epochs", "1", "--max-len", "4",
         "--vocab-size", "8", "--embedding-dim", "2", "--lstm-units", "2", "--lstm-layers", "1", "--attention", "dot",
         "--dense-units", "2", "--validation-split", "0.5", "--out", str(tmp_path / "b")],
        capture_output=True, text=True, env={**os.environ, "PYTHONPATH": str(REPO)}, cwd=tmp_path, timeout=600)
    assert done.returncode == 0, done.stderr
    for noise in ("cuInit", "absl::InitializeLog", "cudart_stub", "oneDNN", "cpu_feature_guard"):
        assert noise not in done.stderr, done.stderr
    assert "validation accuracy" in done.stderr
    assert done.stderr.strip().splitlines()[-1].startswith("warning: validation accuracy"), done.stderr


# === --keep-columns / --keep-all ===
TABLE = 'id,text,stars,label,user\nr1,"A wonderful, moving film.",5,pos,ann\nr2,Dull and far too long.,1,neg,bob\n'


def test_keep_columns_copies_input_columns_beside_the_scores_csv_and_jsonl():
    as_csv = run(score_cli, ["-", "--keep-columns", "user,text,label"], TABLE)
    assert as_csv.exit_code == 0, as_csv.output
    assert (as_csv.stdout.splitlines()[0]
            == "id,user,text,input_label,probability,label,token_count,oov_share,truncated_tokens,status")
    rows = read_csv(as_csv.stdout)
    assert [(r["id"], r["user"], r["text"], r["input_label"]) for r in rows] == [
        ("r1", "ann", "A wonderful, moving film.", "pos"), ("r2", "bob", "Dull and far too long.", "neg")]
    as_jsonl = run(score_cli, ["-", "--keep-all", "--format", "jsonl", "--explain", "1"], TABLE)
    records = [json.loads(line) for line in as_jsonl.stdout.splitlines()]
    assert list(records[0]) == ["id", "text", "stars", "input_label", "user", "probability", "label", "explanation",
                                "token_count", "oov_share", "truncated_tokens", "status"]
    assert records[1]["stars"] == "1" and records[1]["text"] == "Dull and far too long."
    assert [float(r["probability"]) for r in rows] == [r["probability"] for r in records]


def test_keep_columns_from_jsonl_keeps_json_values_and_translate_keeps_too(tmp_path):
    source = tmp_path / "in.jsonl"
    source.write_text('{"id": 1, "text": "Hola.", "meta": {"n": 2}, "n": 3}\n{"id": 2, "text": "", "n": null}\n')
    scored = run(score_cli, [str(source), "--keep-columns", "meta,n"])
    assert [(r["meta"], r["n"]) for r in read_csv(scored.stdout)] == [('{"n": 2}', "3"), ("", "")]
    translated = run(translate_main, [str(source), "--keep-all", "--format", "jsonl", "--beam-size", "1"])
    assert translated.exit_code == 0, translated.output
    records = [json.loads(line) for line in translated.stdout.splitlines()]
    assert ([(r["text"], r["meta"] if "meta" in r else None, r["n"]) for r in records]
            == [("Hola.", {"n": 2}, 3), ("", None, None)])
    assert records[1]["translation"] == ""
    as_txt = run(translate_main, [str(source), "--keep-all"])
    assert as_txt.exit_code == 1 and "--format csv, tsv, jsonl or parquet" in as_txt.output


def test_keep_columns_unknown_column_is_one_line_listing_the_columns(tmp_path):
    out = tmp_path / "o.csv"
    result = run(score_cli, ["-", "--keep-columns", "user,nope", "-o", str(out)], TABLE)
    assert result.exit_code == 1 and len(result.output.strip().splitlines()) == 1
    assert "no column 'nope'; the columns are: 'id', 'text', 'stars', 'label', 'user'" in result.output
    assert not out.exists()
