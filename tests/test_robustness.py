"""python -m bench robustness: CAD pairs (an IMDB review and its minimal-edit revision) through attn-score."""

import gzip

import pytest
from click.testing import CliRunner

from bench.__main__ import main as bench_cli
from bench.robustness import pair_scores, read_pairs
from runtime.io.tables import InputError
from tests.conftest import DATASETS

CAD_DEV = DATASETS / "cad" / "dev.tsv.gz"


def test_pair_scores_count_originals_revisions_and_whole_pairs():
    labels = ["negative", "positive", "positive", "negative", "negative", "positive"]
    predicted = ["negative", "negative", "positive", "negative", "unknown", "positive"]
    scores = pair_scores(predicted, labels, [0, 0, 1, 1, 2, 2])
    assert scores.pairs == 3
    assert scores.originals == pytest.approx(2 / 3)  # the third original was 'unknown': wrong
    assert scores.revisions == pytest.approx(2 / 3)
    assert scores.both == pytest.approx(1 / 3)


def test_read_pairs_refuses_a_pair_that_is_not_two_rows(tmp_path):
    path = tmp_path / "pairs.tsv"
    path.write_text("Sentiment\tText\tbatch_id\nPositive\tgood\t1\nNegative\tbad\t1\nPositive\tfine\t2\n",
                    encoding="utf-8")
    with pytest.raises(InputError, match=r"pairs.tsv: batch_id '2' has 1 rows \(lines \[4\]\)"):
        read_pairs(str(path))


def test_cad_dev_pairs_are_245_with_the_original_first():
    texts, labels, pair_of = read_pairs(str(CAD_DEV))
    assert len(texts) == 490 and pair_of[:4] == [0, 0, 1, 1] and max(pair_of) == 244
    assert all(labels[i] != labels[i + 1] for i in range(0, 490, 2))  # each revision flips the label


def test_bench_robustness_prints_the_table_through_attn_score(tmp_path):
    subset = tmp_path / "cad.tsv"
    with gzip.open(CAD_DEV, "rt", encoding="utf-8") as handle:
        lines = handle.readlines()
    subset.write_text("".join(lines[:21]), encoding="utf-8")  # header + 10 pairs
    result = CliRunner().invoke(bench_cli, ["robustness", "--model", "imdb", "--data", str(subset)])
    assert result.exit_code == 0, result.output
    assert "10 CAD pairs" in result.output and "| imdb |" in result.output


@pytest.mark.slow
def test_shipped_default_keeps_its_cad_dev_robustness():
    """The English default (distilled from five networks trained with CAD's train pairs, their changed sentences
    and negated-negative rows, one word-drop copy of each, selected on CAD dev among others) measured 98.4 % /
    89.0 % / 87.3 % (originals / revisions / both of a pair) on all 245 dev pairs; the defaults before it
    96.7 / 87.8 / 84.5, 97.1 / 87.3 / 84.5, 93.9 / 89.0 / 82.9, 97.1 / 83.3 / 80.4 and 97.6 / 69.8 / 67.3.
    Floors 3 points below: a
    retrain that forgets the minimal edits fails here."""
    from bench.robustness import attn_score_labels

    texts, labels, pair_of = read_pairs(str(CAD_DEV))
    scores = pair_scores(attn_score_labels("imdb", texts), labels, pair_of)
    assert scores.originals >= 0.95 and scores.revisions >= 0.86 and scores.both >= 0.84, scores
