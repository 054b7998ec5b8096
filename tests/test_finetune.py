"""attn-export train --init-from: fine-tune a saved classifier (a bundle's or a run's training/) on new data."""

import json

import numpy as np
import pytest
from click.testing import CliRunner

import runtime
from runtime.bundle import Bundle
from tests.conftest import DATASETS, IMDB_TRAIN
from trainer.cli import main as export_cli

TINY = ["--max-len", "30", "--vocab-size", "400", "--embedding-dim", "8", "--lstm-units", "4", "--epochs", "1"]
TEXTS = ["A wonderful, moving film.", "Dull and far too long.", "I did not like this film.", "not bad at all"]


@pytest.fixture(scope="module")
def base(tmp_path_factory):
    out = tmp_path_factory.mktemp("finetune") / "base"
    result = CliRunner().invoke(export_cli, ["train", "--train-data", str(IMDB_TRAIN), "--limit", "300", *TINY,
                                             "--out", str(out)])
    assert result.exit_code == 0, result.output
    return out


def _finetune(base, out, *extra):
    return CliRunner().invoke(export_cli, ["train", "--train-data", str(IMDB_TRAIN), "--limit", "300",
                                           "--init-from", str(base), *extra, "--out", str(out)])


def test_init_from_starts_from_the_saved_weights_and_keeps_its_tokenizer(base, tmp_path):
    """At a learning rate of 1e-9 a fine-tune is the saved network (a fresh one would score anything);
    at 1e-2 on other rows (CAD) it moves; the tokenizer and architecture stay the saved ones."""
    still = _finetune(base, tmp_path / "still", "--learning-rate", "1e-9", "--epochs", "1")
    assert still.exit_code == 0, still.output
    moved = _finetune(base, tmp_path / "moved", "--learning-rate", "1e-2", "--epochs", "2", "--seed", "3",
                      "--extra-train-data", str(DATASETS / "cad" / "train.tsv.gz"), "--extra-text-column", "Text",
                      "--extra-label-column", "Sentiment")
    assert moved.exit_code == 0, moved.output
    before = runtime.load(base).predict(TEXTS)
    assert np.abs(runtime.load(tmp_path / "still").predict(TEXTS) - before).max() < 1e-4
    assert np.abs(runtime.load(tmp_path / "moved").predict(TEXTS) - before).max() > 1e-3
    saved = json.loads((base / "training" / "tokenizer.json").read_text())
    for name in ("still", "moved"):
        manifest = Bundle.load(tmp_path / name).manifest
        assert manifest["tokenizer"]["vocab"] == saved["vocab"] and manifest["tokenizer"]["spec"] == saved["spec"]
        assert manifest["model"]["lstm_units"] == 4 and manifest["model"]["embedding_dim"] == 8
        assert manifest["data"]["init_from"]["folder"] == str(base)
    assert json.loads((tmp_path / "moved" / "training" / "history.json").read_text())["data"]["init_from"][
        "best_epoch"] == 1


@pytest.mark.parametrize("extra, named", [
    (["--lstm-units", "8"], "--lstm-units"),
    (["--vocab-size", "500", "--split-negation"], "--split-negation, --vocab-size"),
    (["--refit"], "--refit"),
    (["--members", "2"], "--members"),
])
def test_init_from_refuses_what_the_saved_network_fixes_in_one_line(base, tmp_path, extra, named):
    result = _finetune(base, tmp_path / "out", *extra)
    assert result.exit_code != 0 and named in result.output
    assert len(result.output.strip().splitlines()) == 1 and "Traceback" not in result.output
    assert not (tmp_path / "out").exists()  # refused before anything is written


def test_init_from_a_folder_without_a_saved_network_is_one_line(tmp_path):
    (tmp_path / "empty").mkdir()
    result = _finetune(tmp_path / "empty", tmp_path / "out")
    assert result.exit_code != 0 and "no training/model.keras" in result.output
    assert str(tmp_path / "empty") in result.output
    assert len(result.output.strip().splitlines()) == 1
