"""attn-export distill: a student trained on a teacher bundle's probabilities (through the runtime)."""

from __future__ import annotations

import json

import numpy as np
import pytest
from click.testing import CliRunner

from conftest import IMDB_TRAIN
from runtime.bundle import Bundle, sha256_of
from trainer.cli import main as export_cli


def test_soften_and_targets():
    from trainer.distill import soft_targets, soften

    p = np.array([0.01, 0.3, 0.5, 0.8, 0.999], dtype=np.float32)
    np.testing.assert_allclose(soften(p, 1.0), p, atol=1e-6)
    warm = soften(p, 3.0)
    # closer to 0.5, order kept
    assert np.all(np.abs(warm - 0.5) <= np.abs(p - 0.5) + 1e-6) and np.all(np.diff(warm) > 0)
    labels = np.array([0, 1, 1, 0, 1])
    np.testing.assert_array_equal(soft_targets(p, labels, alpha=0.0), labels.astype(np.float32))
    np.testing.assert_allclose(soft_targets(p, labels, alpha=1.0, temperature=3.0), warm, atol=1e-6)
    np.testing.assert_allclose(soft_targets(p, labels, alpha=0.25), 0.25 * p + 0.75 * labels, atol=1e-6)


def test_augment_texts_drops_words_never_repeats_or_empties():
    from trainer.distill import augment_texts

    texts = ["one two three four five six", "a b", "ab", "x", "apple berry w1 w2", ""]
    copies = augment_texts(texts, 3, drop=0.3, seed=4)
    assert copies == augment_texts(texts, 3, drop=0.3, seed=4) and copies != augment_texts(texts, 3, drop=0.3, seed=5)
    assert len(copies) == 3 * len(texts)
    for k, copy in enumerate(copies):
        text = texts[k % len(texts)]
        if len(text.strip()) < 2:  # nothing to drop: kept as it is
            assert copy == text
            continue
        assert copy and copy != text
        if len(text.split()) >= 3:  # words dropped, order kept
            words = text.split()
            assert all(word in words for word in copy.split())
            assert [w for w in words if w in copy.split()] == copy.split()
        else:  # characters dropped
            assert len(copy) < len(text) and set(copy) <= set(text)
    with pytest.raises(ValueError, match="drop"):
        augment_texts(texts, 1, drop=1.0)


def rule_rows(n: int, seed: int):
    """(texts, a, b): n texts of 6-10 filler words; a = 1 where the word 'apple' was put in, b = 1
    where 'berry' was (drawn independently). A teacher that learned rule a is then a function a
    student can learn in seconds, and unrelated to the b labels the student is given."""
    rng = np.random.default_rng(seed)
    filler = [f"w{i}" for i in range(30)]
    texts, a, b = [], rng.integers(0, 2, n), rng.integers(0, 2, n)
    for i in range(n):
        words = list(rng.choice(filler, rng.integers(6, 11)))
        for present, word in ((a[i], "apple"), (b[i], "berry")):
            if present:
                words.insert(rng.integers(0, len(words) + 1), word)
        texts.append(" ".join(words))
    return texts, a.astype(np.int32), b.astype(np.int32)


SMALL = dict(vocab_size=100, max_len=16, embedding_dim=8, lstm_units=4, lstm_layers=1, attention_units=8, dense_units=8,
             batch_size=32, learning_rate=1e-2, epochs=3, seed=0)


@pytest.fixture(scope="module")
def rule_teacher(tmp_path_factory):
    """A real trained bundle whose answer is rule a ('apple' in the text), learned from 800 rows."""
    from runtime.tokenizer import TokenizerSpec
    from trainer.config import ClassifierConfig
    from trainer.data import LabelledTexts
    from trainer.export import export_bundle
    from trainer.fit import train_classifier

    texts, a, _ = rule_rows(800, 0)
    result = train_classifier(LabelledTexts(texts, a, "rule a"), None, ClassifierConfig(**SMALL),
                              TokenizerSpec(max_len=16), verbose=0, log=lambda _: None)
    out = tmp_path_factory.mktemp("teacher") / "rule-a"
    export_bundle(result.model, result.config, result.tokenizer, out, log=lambda _: None)
    return out


@pytest.fixture(scope="module")
def rule_file(tmp_path_factory):
    """800 rows (text, label = rule b) as a TSV file for the command line."""
    texts, _, b = rule_rows(800, 1)
    path = tmp_path_factory.mktemp("data") / "rule-b.tsv"
    path.write_text("text\tlabel\n" + "".join(f"{t}\t{y}\n" for t, y in zip(texts, b)), encoding="utf-8")
    return path


def test_student_tracks_its_teacher_better_than_a_label_only_student(rule_teacher):
    """Same rows, seed and architecture, given rule-b labels: the student trained on the teacher's
    probabilities (alpha=1) is much closer to the teacher on held-out rows than the one trained on
    the labels alone (alpha=0); and its validation accuracy is measured against the TRUE (rule b)
    labels: chance, although it agrees with the teacher almost everywhere."""
    from trainer.config import ClassifierConfig
    from trainer.data import LabelledTexts
    from trainer.distill import distill, load_teacher, teacher_probabilities
    from trainer.fit import predict_probabilities
    from trainer.recipe import ClassifierData

    teacher, record = load_teacher(str(rule_teacher))
    assert record["model_sha256"] == sha256_of(rule_teacher / "model.onnx")
    held_out, a, _ = rule_rows(400, 2)
    expected = teacher_probabilities(teacher, held_out, progress=False)
    assert np.mean((expected >= 0.5) == a) > 0.95  # the teacher learned rule a
    train, validation = rule_rows(800, 1), rule_rows(200, 3)
    data = ClassifierData(train=LabelledTexts(train[0], train[2], "b"),
                          validation=LabelledTexts(validation[0], validation[2], "b"),
                          own_validation=LabelledTexts(validation[0], validation[2], "b"))
    gaps, metrics = {}, {}
    for alpha in (0.0, 1.0):
        result, metrics[alpha], _ = distill(data, teacher, ClassifierConfig(**SMALL), alpha=alpha,
                                            verbose=0, log=lambda _: None)
        assert result.tokenizer is teacher.tokenizer  # the student reads the teacher's tokens
        gaps[alpha] = float(np.mean(np.abs(predict_probabilities(result.model, result.tokenizer, held_out) - expected)))
    assert gaps[1.0] < 0.5 * gaps[0.0], gaps
    assert metrics[1.0]["distillation"]["validation_agreement_with_teacher"] > 0.9
    assert metrics[1.0]["validation_accuracy"] < 0.7 < metrics[0.0]["validation_accuracy"], metrics


@pytest.fixture(scope="module")
def cli_student(rule_teacher, rule_file, tmp_path_factory):
    out = tmp_path_factory.mktemp("distill") / "student"
    result = CliRunner().invoke(export_cli, [
        "distill", "--teacher", str(rule_teacher), "--train-data", str(rule_file), "--epochs", "2",
        "--embedding-dim", "8", "--lstm-units", "4", "--lstm-layers", "1",
        "--attention-units", "8", "--dense-units", "8",
        "--batch-size", "32", "--alpha", "0.7", "--temperature", "2", "--refit", "--quantize", "int8", "--augment", "1",
        "--augment-drop", "0.2", "--force", "--out", str(out)])
    assert result.exit_code == 0, result.output
    return out, result.output


def test_cli_distill_writes_a_bundle_that_names_its_teacher(cli_student, rule_teacher, rule_file):
    import runtime

    out, output = cli_student
    assert "parity: max |Δprobability|" in output and "teacher validation accuracy" in output
    manifest = Bundle.load(out).manifest
    teacher = manifest["data"]["teacher"]
    assert teacher["name"] == str(rule_teacher) and teacher["model_sha256"] == sha256_of(rule_teacher / "model.onnx")
    assert manifest["data"]["distillation"]["alpha"] == 0.7 and manifest["data"]["distillation"]["temperature"] == 2.0
    assert "command" in manifest["data"] and manifest["precision"] == "int8"
    # the teacher's tokenizer by default
    assert manifest["tokenizer"] == Bundle.load(rule_teacher).manifest["tokenizer"]
    assert manifest["model"]["lstm_layers"] == 1 and manifest["model"]["embedding_dim"] == 8
    # the split is train's (--validation-split 0.1); one augmented copy of every training row joined them; the
    # refit trained on train + validation with soft targets, each with its augmented copy
    assert manifest["data"]["train_rows"] == 720 and manifest["metrics"]["refit"]["rows"] == 1600
    augment = manifest["data"]["distillation"]["augment"]
    assert augment["copies"] == 1 and augment["word_drop"] == 0.2 and augment["training_rows"] == 1440
    assert "distill" in (out / "MODEL_CARD.md").read_text()
    p = runtime.load(out, provider="cpu").predict(rule_rows(20, 5)[0])
    assert p.shape == (20,) and np.all((p >= 0) & (p <= 1))
    history = json.loads((out / "training" / "history.json").read_text())
    assert history["data"]["teacher"]["model_sha256"] == teacher["model_sha256"]


def test_several_teachers_are_averaged_per_network(cli_student, rule_teacher):
    """Two real bundles (rule a's teacher and its int8 student) as one teacher: the mean of their
    networks' probabilities, each bundle scored on its own; a bundle of k networks weighs k (checked
    by declaring the first one 3 networks). (Each is scored by the same pipeline: int8's dynamic
    quantization depends on the batch, so `predict` on other batches differs by ~1e-4.)"""
    from trainer.distill import TeacherPanel, load_teacher, load_teachers, teacher_probabilities

    texts = rule_rows(50, 7)[0]
    student, _ = cli_student
    p_teacher, p_student = (teacher_probabilities(load_teacher(str(path))[0], texts, progress=False)
                            for path in (rule_teacher, student))
    assert np.abs(p_teacher - p_student).mean() > 0.05  # two different answers to average
    panel, record = load_teachers([str(rule_teacher), str(student)])
    assert record["networks"] == 2 and [b["model_sha256"] for b in record["bundles"]] == [
        sha256_of(rule_teacher / "model.onnx"), sha256_of(student / "model.onnx")]
    assert panel.tokenizer is panel.teachers[0].tokenizer
    np.testing.assert_allclose(teacher_probabilities(panel, texts, progress=False),
                               (p_teacher + p_student) / 2, atol=1e-6)
    weighted = TeacherPanel(panel.teachers, [3, 1])
    np.testing.assert_allclose(teacher_probabilities(weighted, texts, progress=False),
                               (3 * p_teacher + p_student) / 4, atol=1e-6)


def test_cli_distill_from_two_teachers_records_both(cli_student, rule_teacher, rule_file, tmp_path):
    student, _ = cli_student
    out = tmp_path / "student2"
    result = CliRunner().invoke(export_cli, [
        "distill", "--teacher", str(rule_teacher), "--teacher", str(student), "--train-data", str(rule_file),
        "--epochs", "1", "--embedding-dim", "8", "--lstm-units", "4", "--lstm-layers", "1", "--attention-units", "8",
        "--dense-units", "8", "--batch-size", "32", "--alpha", "1", "--out", str(out)])
    assert result.exit_code == 0, result.output
    teacher = Bundle.load(out).manifest["data"]["teacher"]
    assert teacher["name"] == f"{rule_teacher} + {student}" and teacher["networks"] == 2
    assert [b["name"] for b in teacher["bundles"]] == [str(rule_teacher), str(student)]
    card = (out / "MODEL_CARD.md").read_text()
    assert sha256_of(student / "model.onnx")[:16] in card and sha256_of(rule_teacher / "model.onnx")[:16] in card


def test_cli_fitting_options_need_fit_tokenizer(rule_teacher, rule_file, tmp_path):
    result = CliRunner().invoke(export_cli, ["distill", "--teacher", str(rule_teacher), "--train-data", str(rule_file),
                                             "--vocab-size", "300", "--out", str(tmp_path / "x")])
    assert result.exit_code == 2 and "--fit-tokenizer" in result.output
    assert not (tmp_path / "x").exists()


@pytest.mark.parametrize("teacher, message", [
    ("no-such-model", "not a shipped model name"),
    ("./no/such/folder", "no such bundle folder"),
    ("spa-eng", "the teacher must be a sentiment classifier"),
])
def test_cli_bad_teacher_is_one_line(teacher, message, tmp_path):
    out = tmp_path / "never"
    result = CliRunner().invoke(export_cli,
                                ["distill", "--teacher", teacher, "--train-data", str(IMDB_TRAIN), "--out", str(out)])
    assert result.exit_code == 1 and message in result.output, result.output
    assert len(result.output.strip().splitlines()) == 1 and "Traceback" not in result.output
    assert not out.exists()


def test_cli_the_same_teacher_twice_is_one_line(rule_teacher, rule_file, tmp_path):
    out = tmp_path / "never"
    result = CliRunner().invoke(export_cli, ["distill", "--teacher", str(rule_teacher), "--teacher", f"{rule_teacher}/",
                                             "--train-data", str(rule_file), "--out", str(out)])
    assert result.exit_code == 1 and "the same bundle as --teacher" in result.output, result.output
    assert len(result.output.strip().splitlines()) == 1 and not out.exists()


def test_cli_distill_init_from_continues_the_saved_student(cli_student, rule_teacher, rule_file, tmp_path):
    """--init-from: the student's network and tokenizer are trained on, not a fresh one. At a learning rate of
    1e-9 one more epoch is the saved network, and the same command without --init-from (a fresh network of the
    same shape) is not; the manifest says which run it continued. What the saved network fixes is refused in one
    line, before anything is written."""
    import runtime
    from trainer.fit import load_classifier_training, predict_probabilities

    student, _ = cli_student
    out = tmp_path / "continued"
    same = ["distill", "--teacher", str(rule_teacher), "--train-data", str(rule_file), "--epochs", "1",
            "--learning-rate", "1e-9", "--batch-size", "32", "--alpha", "0.7"]
    result = CliRunner().invoke(export_cli, [*same, "--init-from", str(student), "--out", str(out)])
    assert result.exit_code == 0, result.output
    shape = ["--embedding-dim", "8", "--lstm-units", "4", "--lstm-layers", "1", "--attention-units", "8",
             "--dense-units", "8"]
    fresh = CliRunner().invoke(export_cli, [*same, *shape, "--out", str(tmp_path / "f")])
    assert fresh.exit_code == 0, fresh.output
    texts = rule_rows(40, 11)[0]
    model, _, tokenizer, _ = load_classifier_training(student)
    before = predict_probabilities(model, tokenizer, texts)
    np.testing.assert_allclose(runtime.load(out, provider="cpu").predict(texts), before, atol=1e-4)
    assert np.abs(runtime.load(tmp_path / "f", provider="cpu").predict(texts) - before).max() > 1e-2
    manifest = Bundle.load(out).manifest
    assert manifest["tokenizer"] == Bundle.load(student).manifest["tokenizer"]
    assert manifest["data"]["init_from"]["folder"] == str(student)
    assert manifest["data"]["distillation"]["tokenizer"] == f"the --init-from network's: {student}"
    for extra, named in ((["--lstm-units", "8"], "--lstm-units"), (["--fit-tokenizer"], "--fit-tokenizer")):
        refused = CliRunner().invoke(export_cli, [
            "distill", "--teacher", str(rule_teacher), "--train-data", str(rule_file), "--init-from", str(student),
            *extra, "--out", str(tmp_path / "never")])
        assert refused.exit_code != 0 and named in refused.output, refused.output
        assert len(refused.output.strip().splitlines()) == 1 and not (tmp_path / "never").exists()
