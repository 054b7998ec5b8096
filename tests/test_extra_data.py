"""attn-export train with a second dataset: IMDB reviews + SST-2 phrases (treebank-tokenized)."""

import csv
import gzip
import json

import pytest
from click.testing import CliRunner

import runtime
from runtime.bundle import Bundle
from runtime.io.tables import InputError
from tests.conftest import DATASETS, IMDB_TRAIN
from trainer.cli import main as export_cli

SST2 = DATASETS / "sst2"


def _slice(source, target, rows):
    """The first `rows` rows of an SST-2 TSV (header kept), as a plain TSV."""
    with gzip.open(source, "rt", encoding="utf-8") as handle:
        lines = [next(handle) for _ in range(rows + 1)]
    target.write_text("".join(lines), encoding="utf-8")
    return target


def test_cli_train_mixes_extra_data_and_refit_keeps_extra_validation_out(tmp_path):
    phrases = _slice(SST2 / "train.tsv.gz", tmp_path / "sst_train.tsv", 400)
    dev = _slice(SST2 / "dev.tsv.gz", tmp_path / "sst_dev.tsv", 100)
    out = tmp_path / "mixed"
    result = CliRunner().invoke(export_cli, [
        "train", "--train-data", str(IMDB_TRAIN), "--limit", "300", "--epochs", "1", "--max-len", "30",
        "--vocab-size", "400", "--embedding-dim", "8", "--lstm-units", "4", "--join-clitics", "--split-negation",
        "--extra-train-data", str(phrases), "--extra-validation-data", str(dev), "--extra-text-column", "sentence",
        "--refit", "--out", str(out)])
    assert result.exit_code == 0, result.output
    manifest = Bundle.load(out).manifest
    data, metrics = manifest["data"], manifest["metrics"]
    assert data["train_rows"] == 270 + 400 and data["validation_rows"] == 30 + 100
    assert data["extra_train"]["rows"] == 400 and data["extra_validation"]["rows"] == 100
    assert len(data["extra_train"]["sha256"]) == 64
    # the refit trains on IMDB train + IMDB validation + SST-2 phrases, never on the SST-2 dev rows
    assert metrics["refit"]["rows"] == 270 + 30 + 400 and "100 rows held out" in result.output
    assert set(metrics["validation_accuracy_by_source"]) == {str(IMDB_TRAIN), str(dev)}
    tokenizer = manifest["tokenizer"]
    assert tokenizer["spec"]["join_clitics"] is True  # serving normalises raw text the same way
    assert tokenizer["spec"]["split_negation"] is True
    vocab = set(tokenizer["vocab"])
    assert "'s" not in vocab and "it's" in vocab  # SST-2's detached clitics were joined before counting
    assert "n't" in vocab and not vocab & {"doesn't", "don't", "isn't"}  # ... and negation split off: one shared token
    assert json.loads((out / "training" / "tokenizer.json").read_text())["spec"]["join_clitics"] is True
    # serving: the bundle alone maps raw text and SST-2's treebank text to the same ids and scores
    model = runtime.load(out)
    scores = model.predict(["it does n't work -lrb- at all -rrb- , it 's dull", "It doesn't work (at all), it's dull",
                            "It doesn’t work (at all), it’s dull"])
    assert scores[0] == scores[1] == scores[2]
    assert model.tokenizer.tokenize("It doesn’t work, it's dull") == ["it", "does", "n't", "work", "it's", "dull"]


def test_cli_extra_data_errors_name_the_file_and_column(tmp_path):
    phrases = _slice(SST2 / "train.tsv.gz", tmp_path / "sst_train.tsv", 20)
    common = ["train", "--train-data", str(IMDB_TRAIN), "--limit", "50", "--epochs", "1", "--out", str(tmp_path / "o")]
    wrong_column = CliRunner().invoke(export_cli, common + ["--extra-train-data", str(phrases)])
    assert wrong_column.exit_code != 0 and "sst_train.tsv" in wrong_column.output and "text" in wrong_column.output
    assert "Traceback" not in wrong_column.output
    bad = tmp_path / "bad.tsv"
    with open(bad, "w", newline="", encoding="utf-8") as handle:
        csv.writer(handle, delimiter="\t").writerows([["label", "sentence"], ["1", "fine"], ["maybe", "odd"]])
    bad_label = CliRunner().invoke(export_cli,
                                   common + ["--extra-validation-data", str(bad), "--extra-text-column", "sentence"])
    assert bad_label.exit_code != 0 and "bad.tsv: line 3" in bad_label.output


def test_several_extra_files_with_their_own_columns_repeats_and_treebank_undone(tmp_path):
    """SST-2 (sentence/label, treebank text) and CAD (Text/Sentiment, Positive/Negative) in one run:
    column candidates, case-insensitive labels, per-file repeats, and --detreebank-extra's rejoined clitics
    while the bundle's spec stays free of join_clitics."""
    from trainer.recipe import load_classifier_data

    phrases = _slice(SST2 / "train.tsv.gz", tmp_path / "sst_train.tsv", 50)
    cad = tmp_path / "cad.tsv"
    cad.write_text("Sentiment\tText\tbatch_id\nNegative\tIt does n't work -lrb- at all -rrb-\t4\n"
                   "Positive\tIt works, it 's fine\t4\n", encoding="utf-8")
    data = load_classifier_data(str(IMDB_TRAIN), validation_split=0.5, split_seed=0, limit=20,
                                extra_train_data=[str(phrases), str(cad)], extra_train_repeat=[1, 3],
                                extra_validation_data=[str(cad)], extra_text_column="sentence,Text",
                                extra_label_column="label,Sentiment", detreebank_extra=True)
    assert len(data.train) == 10 + 50 + 2 * 3 and len(data.validation) == 10 + 2
    assert data.train.texts[-2:] == ["It doesn't work ( at all )", "It works, it's fine"]
    assert list(data.train.labels[-2:]) == [0, 1]
    records = data.provenance["extra_train"]
    assert [r["rows"] for r in records] == [50, 6] and records[1]["repeat"] == 3 and "repeat" not in records[0]
    assert data.provenance["extra_detreebanked"] is True
    with pytest.raises(InputError, match="one count >= 1 per --extra-train-data file"):
        load_classifier_data(str(IMDB_TRAIN), validation_split=0.5, split_seed=0, limit=20,
                             extra_train_data=[str(phrases), str(cad)], extra_train_repeat=[2],
                             extra_text_column="sentence,Text", extra_label_column="label,Sentiment")
    with pytest.raises(InputError, match=r"cad.tsv: no text column .*'review'"):
        load_classifier_data(str(IMDB_TRAIN), validation_split=0.5, split_seed=0, limit=20,
                             extra_train_data=[str(cad)], extra_text_column="review,body")
