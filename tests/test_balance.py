"""attn-export balance-cue (a negation's rows label-balanced) and cue-rows (a negation directly before a word
the lexicon calls negative, both labels kept), from real SST-2 phrases; bad input in one line."""

import gzip
import re
from collections import Counter

from click.testing import CliRunner

from tests.conftest import DATASETS
from trainer.balance import NEGATION
from trainer.cli import main as export_cli

SST2_TRAIN = DATASETS / "sst2" / "train.tsv.gz"


def _rows(path, text_column, label_column):
    with gzip.open(path, "rt", encoding="utf-8") if str(path).endswith(".gz") else open(path, encoding="utf-8") as f:
        header = f.readline().rstrip("\n").split("\t")
        t, lab = header.index(text_column), header.index(label_column)
        return [(cells[t], cells[lab]) for cells in (line.rstrip("\n").split("\t") for line in f)]


def test_sst2_negation_rows_come_out_balanced_and_are_real_rows(tmp_path):
    out = tmp_path / "neg.tsv.gz"
    result = CliRunner().invoke(export_cli, ["balance-cue", str(SST2_TRAIN), "--text-column", "sentence",
                                             "--out", str(out)])
    assert result.exit_code == 0, result.output
    source, written = _rows(SST2_TRAIN, "sentence", "label"), _rows(out, "sentence", "label")
    cue = re.compile(NEGATION, re.IGNORECASE)
    before = Counter(label for text, label in source if cue.search(text))
    assert before["0"] > 1.5 * before["1"] > 0  # negation leans negative in SST-2 (why this exists)
    after = before + Counter(label for _, label in written)
    assert after["0"] == after["1"]  # exactly balanced
    positives = Counter(" ".join(text.split()) for text, label in source if label == "1" and cue.search(text))
    copies = Counter(text for text, _ in written)
    assert {label for _, label in written} == {"1"} and set(copies) <= set(positives)  # real rows, copied
    assert max(copies[t] / positives[t] for t in copies) <= 2  # whole copies, then a sample without repeats
    assert f"{len(written):,} rows labelled 1" in result.output
    again = CliRunner().invoke(export_cli, ["balance-cue", str(SST2_TRAIN), "--text-column", "sentence",
                                            "--out", str(out)])
    assert again.exit_code != 0 and "not overwritten" in again.output  # never overwrites


def test_bad_input_is_one_line(tmp_path):
    one_sided = tmp_path / "one.tsv"
    one_sided.write_text("text\tlabel\nnot good\t0\nnever again\t0\ngreat\t1\n", encoding="utf-8")
    cases = [
        (["balance-cue", str(SST2_TRAIN), "--out", str(tmp_path / "a.tsv")], "text"),  # no column "text"
        (["balance-cue", str(SST2_TRAIN), "--text-column", "sentence", "--cue", "(", "--out", str(tmp_path / "b.tsv")],
         "--cue"),
        (["balance-cue", str(one_sided), "--out", str(tmp_path / "c.tsv")], "1 label(s)"),
    ]
    for args, named in cases:
        result = CliRunner().invoke(export_cli, args)
        assert result.exit_code != 0 and named in result.output, result.output
        assert len(result.output.strip().splitlines()) == 1 and "Traceback" not in result.output
    assert not any(tmp_path.glob("[abc].tsv*"))  # nothing written, no partial left


def test_negated_negatives_are_real_rows_with_their_own_labels(tmp_path):
    out = tmp_path / "negneg.tsv.gz"
    result = CliRunner().invoke(export_cli, ["cue-rows", str(SST2_TRAIN), "--text-column", "sentence",
                                             "--negated-lexicon", str(SST2_TRAIN), "--out", str(out)])
    assert result.exit_code == 0, result.output
    source, written = _rows(SST2_TRAIN, "sentence", "label"), _rows(out, "sentence", "label")
    negative_words = {t.strip() for t, label in source  # one-word rows of a word, not "(" or "--"
                      if label == "0" and len(t.split()) == 1 and any(c.isalnum() for c in t)}
    # independently of the command's regular expression: a negation token, then a lexicon word
    negations = {"not", "no", "never", "nothing", "nobody", "none", "nor", "neither", "nowhere", "without",
                 "cannot", "n't"}

    def negated(text):
        tokens = text.lower().split()  # the next word, or its part before a hyphen ("nor demented-funny")
        return any(a in negations and (b in negative_words or b.split("-")[0] in negative_words)
                   for a, b in zip(tokens, tokens[1:]))

    expected = Counter((" ".join(t.split()), label) for t, label in source if negated(t))
    assert Counter(written) == expected  # every such row once, with its own label, nothing else
    assert ("did n't hate this one", "1") in expected and ("is never dull", "1") in expected
    assert {"0", "1"} == {label for _, label in written}  # both labels kept: weighed up, not relabelled
    assert f"{len(written):,} of {len(source):,} rows match" in result.output
    again = CliRunner().invoke(export_cli, ["cue-rows", str(SST2_TRAIN), "--text-column", "sentence",
                                            "--cue", "not", "--out", str(out)])
    assert again.exit_code != 0 and "not overwritten" in again.output


def test_cue_rows_bad_input_is_one_line(tmp_path):
    positive_only = tmp_path / "lexicon.tsv"
    positive_only.write_text("sentence\tlabel\ngreat\t1\nnot bad at all\t1\n", encoding="utf-8")
    cases = [
        (["cue-rows", str(SST2_TRAIN), "--text-column", "sentence", "--out", str(tmp_path / "a.tsv")], "exactly one"),
        (["cue-rows", str(SST2_TRAIN), "--text-column", "sentence", "--cue", "(", "--out", str(tmp_path / "b.tsv")],
         "regular expression"),
        (["cue-rows", str(SST2_TRAIN), "--text-column", "sentence", "--negated-lexicon", str(positive_only),
          "--out", str(tmp_path / "c.tsv")], "lexicon.tsv"),
        (["cue-rows", str(SST2_TRAIN), "--text-column", "sentence", "--cue", "zzqqxx",
          "--out", str(tmp_path / "d.tsv")],
         "no row matches"),
    ]
    for args, named in cases:
        result = CliRunner().invoke(export_cli, args)
        assert result.exit_code != 0 and named in result.output, result.output
        assert "Traceback" not in result.output
        assert len([line for line in result.output.splitlines() if line.startswith("Error")]) == 1
    assert not any(tmp_path.glob("[abcd].tsv*"))
