"""Counterfactual pairs in training: the changed sentences of CAD's pairs as rows, and pair-balanced
batches (both halves of a pair in one batch, every epoch, with a fixed step count)."""

import gzip

import numpy as np
import pytest
from click.testing import CliRunner

from runtime.io.tables import InputError
from tests.conftest import DATASETS, IMDB_TRAIN
from trainer.cli import main as export_cli
from trainer.counterfactual import changed_sentences, sentences
from trainer.fit import BucketedBatches, length_batches

CAD_TRAIN = DATASETS / "cad" / "train.tsv.gz"


def test_sentences_and_the_diff_keep_only_what_the_revision_changed():
    assert sentences('Long. "Boring!" Never again?<br /><br />Fine ... ok') == [
        "Long.", '"Boring!"', "Never again?", "Fine ...", "ok"]
    first = "Great cast. The plot was bad. I hated the end. See it."
    second = "Great cast. The plot was not bad. I loved the end. See it."
    assert changed_sentences(first, second) == (["The plot was bad.", "I hated the end."],
                                                 ["The plot was not bad.", "I loved the end."])
    assert changed_sentences(first, first) == ([], [])


def test_cli_writes_the_edits_of_the_real_cad_pairs(tmp_path):
    out = tmp_path / "edits.tsv.gz"
    result = CliRunner().invoke(export_cli, ["counterfactual-edits", str(CAD_TRAIN), "--out", str(out)])
    assert result.exit_code == 0, result.output
    with gzip.open(out, "rt", encoding="utf-8") as handle:
        lines = handle.read().splitlines()
    assert lines[0] == "Sentiment\tText\tbatch_id"
    rows = [line.split("\t") for line in lines[1:]]
    assert all(len(row) == 3 and row[1] for row in rows)
    assert f"{len(rows):,} changed sentences from 1,707 pairs" in result.output
    by_pair = {}
    for label, text, pair in rows:
        by_pair.setdefault(pair, set()).add(label)
    assert len(by_pair) > 1500 and sum(labels == {"Positive", "Negative"} for labels in by_pair.values()) > 1500
    assert ["Negative", "Long, boring, blasphemous.", "4"] in rows
    assert ["Positive", "Long, fascinating, soulful.", "4"] in rows
    again = CliRunner().invoke(export_cli, ["counterfactual-edits", str(CAD_TRAIN), "--out", str(out)])
    assert again.exit_code != 0 and "exists; not overwritten" in again.output and "Traceback" not in again.output


@pytest.mark.parametrize("content, message", [
    ("Sentiment\tText\tbatch_id\nNegative\tbad\t1\n", "batch_id '1' has 1 rows; a pair has 2"),
    ("Sentiment\tText\tbatch_id\nNegative\tbad\t1\nNegative\tworse\t1\n", "both halves are labelled 'Negative'"),
    ("Sentiment\tText\nNegative\tbad\n", "batch_id"),
])
def test_bad_pairs_are_refused_in_one_line(tmp_path, content, message):
    pairs = tmp_path / "pairs.tsv"
    pairs.write_text(content, encoding="utf-8")
    result = CliRunner().invoke(export_cli, ["counterfactual-edits", str(pairs), "--out", str(tmp_path / "e.tsv")])
    assert result.exit_code != 0 and message in result.output and "pairs.tsv" in result.output
    assert "Traceback" not in result.output and not (tmp_path / "e.tsv").exists()


def _placement(batches):
    return {int(row): b for b, batch in enumerate(batches) for row in batch}


def test_grouped_rows_share_a_batch_every_epoch_in_a_fixed_number_of_batches():
    rng = np.random.default_rng(0)
    count = 3000
    lengths = rng.integers(1, 400, count)
    groups = np.full(count, -1)
    groups[:1800] = np.arange(1800) // 2  # 900 pairs, then 1,200 rows alone
    groups[1800:1806] = 5000  # one group of six
    ids = np.zeros((count, 400), np.int32)
    for row, n in enumerate(lengths):
        ids[row, :n] = row + 1
    batches = BucketedBatches(ids, lengths, np.zeros(count), batch_size=64, seed=3, groups=groups)
    for _ in range(3):
        seen = [batch[:, 0] - 1 for batch, _ in batches]
        assert len(seen) == len(batches)  # the step count Keras is told holds every epoch
        assert sorted(np.concatenate(seen).tolist()) == list(range(count))  # every row once
        where = _placement(seen)
        assert all(where[2 * k] == where[2 * k + 1] for k in range(900))
        assert len({where[row] for row in range(1800, 1806)}) == 1
    plain = length_batches(lengths, 64, np.random.default_rng(3))  # without groups pairs scatter
    where = _placement(plain)
    assert sum(where[2 * k] != where[2 * k + 1] for k in range(900)) > 500


def test_pair_column_groups_each_copy_of_each_extra_file_apart(tmp_path):
    from trainer.recipe import load_classifier_data

    cad = tmp_path / "cad.tsv"
    cad.write_text("Sentiment\tText\tbatch_id\nNegative\tbad\t4\nPositive\tgood\t4\nNegative\tdull\t7\n"
                   "Positive\tfun\t7\n", encoding="utf-8")
    plain = tmp_path / "plain.tsv"
    plain.write_text("Sentiment\tText\nPositive\tfine\n", encoding="utf-8")
    data = load_classifier_data(str(IMDB_TRAIN), validation_split=0.5, split_seed=0, limit=10,
                                extra_train_data=[str(cad), str(plain), str(cad)], extra_train_repeat=[2, 1, 1],
                                extra_text_column="Text", extra_label_column="Sentiment", extra_pair_column="batch_id")
    groups = data.train.groups.tolist()
    assert groups[:5] == [-1] * 5  # the IMDB rows
    cad_groups = groups[5:9] + groups[9:13] + groups[14:18]
    assert groups[13] == -1  # the file without the column
    pairs = [tuple(cad_groups[i : i + 2]) for i in range(0, 12, 2)]
    assert all(a == b >= 0 for a, b in pairs) and len(set(pairs)) == 6  # 2 pairs x 3 copies, none merged
    assert data.provenance["extra_pair_column"] == "batch_id"


def test_pair_column_on_rows_without_an_id_names_the_line(tmp_path):
    from trainer.counterfactual import read_pairs

    pairs = tmp_path / "pairs.tsv"
    pairs.write_text("Sentiment\tText\tbatch_id\nNegative\tbad\t\n", encoding="utf-8")
    with pytest.raises(InputError, match=r"pairs.tsv: line 2: empty 'batch_id'"):
        read_pairs(pairs)


def test_batch_partners_pair_only_two_rows_of_opposite_labels():
    from trainer.fit import batch_partners

    groups = np.array([5, -1, 5, 8, 8, 9, 9, 9, 3, 3])
    labels = np.array([1, 0, 0, 1, 1, 0, 1, 1, 0.2, 0.9])  # soft targets count by their side of 0.5
    assert batch_partners(groups, labels).tolist() == [2, -1, 0, -1, -1, -1, -1, -1, 9, 8]


def test_paired_loss_is_bce_plus_the_pairwise_term_on_each_pair_once():
    from trainer.fit import paired_loss

    p = np.array([0.3, 0.6, 0.9, 0.2], np.float32)  # row 0 (positive) and 1 (negative) are a pair, the wrong way
    labels = np.array([1, 0, 1, 0], np.float32)
    partner = np.array([1, 0, -1, -1], np.float32)
    bce = -(labels * np.log(p) + (1 - labels) * np.log(1 - p))
    logit = np.log(p / (1 - p))
    term = np.log1p(np.exp(logit[1] - logit[0]))  # softplus(z_negative - z_positive), one pair
    for weight in (0.0, 2.0):
        got = np.asarray(paired_loss(weight)(np.stack([labels, partner], 1), p[:, None]))
        assert np.isclose(got.mean(), bce.mean() + weight * term, rtol=1e-5)


def test_pair_loss_trains_through_the_cli_and_needs_pairs(tmp_path):
    """It changes what is learnt (same seed, other weights), is recorded, and without pairs is refused
    in one line before anything is written."""
    cad = tmp_path / "cad.tsv"
    with gzip.open(CAD_TRAIN, "rt", encoding="utf-8") as handle:
        cad.write_text("".join(next(handle) for _ in range(41)), encoding="utf-8")  # 20 pairs
    common = ["train", "--train-data", str(IMDB_TRAIN), "--limit", "200", "--epochs", "1", "--max-len", "30",
              "--vocab-size", "300", "--embedding-dim", "8", "--lstm-units", "4", "--extra-train-data", str(cad),
              "--extra-text-column", "Text", "--extra-label-column", "Sentiment"]
    outs = {}
    for weight in ("0", "5", "0.0"):  # "0.0": the control, a rerun of "0" (training here is deterministic)
        outs[weight] = tmp_path / f"w{weight}"
        result = CliRunner().invoke(export_cli, common + ["--extra-pair-column", "batch_id", "--pair-loss-weight",
                                                          weight, "--out", str(outs[weight])])
        assert result.exit_code == 0, result.output
    import runtime
    from runtime.bundle import Bundle

    assert Bundle.load(outs["5"]).manifest["model"]["pair_loss_weight"] == 5.0
    texts = ["a fine film", "a dull film", "not bad"]
    unpaired = runtime.load(outs["0"]).predict(texts)
    assert np.array_equal(runtime.load(outs["0.0"]).predict(texts), unpaired)
    assert np.abs(runtime.load(outs["5"]).predict(texts) - unpaired).max() > 1e-6
    refused = CliRunner().invoke(export_cli, common + ["--pair-loss-weight", "1", "--out", str(tmp_path / "no")])
    assert refused.exit_code != 0 and "--pair-loss-weight needs --extra-pair-column" in refused.output
    assert len(refused.output.strip().splitlines()) == 1 and not (tmp_path / "no").exists()
