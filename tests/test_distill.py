"""attn-export distill: a student trained on a teacher bundle's probabilities (through the runtime)."""

from __future__ import annotations

import json

import numpy as np
import pytest
from click.testing import CliRunner

from conftest import IMDB_TRAIN, TINY
from runtime.bundle import Bundle, sha256_of
from trainer.cli import main as export_cli


def test_soften_and_targets():
    from trainer.distill import soft_targets, soften

    p = np.array([0.01, 0.3, 0.5, 0.8, 0.999], dtype=np.float32)
    np.testing.assert_allclose(soften(p, 1.0), p, atol=1e-6)
    warm = soften(p, 3.0)
    assert np.all(np.abs(warm - 0.5) <= np.abs(p - 0.5) + 1e-6) and np.all(np.diff(warm) > 0)  # closer to 0.5, order kept
    labels = np.array([0, 1, 1, 0, 1])
    np.testing.assert_array_equal(soft_targets(p, labels, alpha=0.0), labels.astype(np.float32))
    np.testing.assert_allclose(soft_targets(p, labels, alpha=1.0, temperature=3.0), warm, atol=1e-6)
    np.testing.assert_allclose(soft_targets(p, labels, alpha=0.25), 0.25 * p + 0.75 * labels, atol=1e-6)


def test_student_tracks_its_teacher_better_than_a_label_only_student(tiny_bundle, imdb_train):
    """Same rows, seed and architecture: the student trained on the teacher's probabilities
    (alpha=1) is closer to the teacher on held-out rows than the one trained on the labels (alpha=0)."""
    from trainer.config import ClassifierConfig
    from trainer.distill import distill, load_teacher, teacher_probabilities
    from trainer.fit import predict_probabilities
    from trainer.recipe import ClassifierData

    teacher, record = load_teacher(str(tiny_bundle))
    assert record["model_sha256"] == sha256_of(tiny_bundle / "model.onnx")
    order = np.random.default_rng(0).permutation(len(imdb_train))  # conftest's shuffle: the teacher saw order[:2000]
    train, validation, held_out = (imdb_train.take(order[a:b]) for a, b in ((3000, 4500), (4500, 4800), (2000, 2500)))
    data = ClassifierData(train=train, validation=validation, own_validation=validation)
    config = dict(TINY, embedding_dim=16, lstm_units=8, epochs=2)
    expected = teacher_probabilities(teacher, held_out.texts, progress=False)
    gaps = {}
    for alpha in (0.0, 1.0):
        result, metrics, _ = distill(data, teacher, ClassifierConfig(**config), alpha=alpha, verbose=0, log=lambda _: None)
        assert result.tokenizer is teacher.tokenizer  # the student reads the teacher's tokens
        gaps[alpha] = float(np.mean(np.abs(predict_probabilities(result.model, result.tokenizer, held_out.texts) - expected)))
    assert gaps[1.0] < 0.8 * gaps[0.0], gaps


@pytest.fixture(scope="module")
def cli_student(tiny_bundle, tmp_path_factory):
    out = tmp_path_factory.mktemp("distill") / "student"
    result = CliRunner().invoke(export_cli, [
        "distill", "--teacher", str(tiny_bundle), "--train-data", str(IMDB_TRAIN), "--limit", "300", "--epochs", "2",
        "--embedding-dim", "8", "--lstm-units", "4", "--lstm-layers", "1", "--alpha", "0.7", "--temperature", "2",
        "--refit", "--out", str(out)])
    assert result.exit_code == 0, result.output
    return out, result.output


def test_cli_distill_writes_a_bundle_that_names_its_teacher(cli_student, tiny_bundle):
    import runtime
    from trainer.data import read_table, shuffle_split

    out, output = cli_student
    assert "parity: max |Δprobability|" in output and "teacher validation accuracy" in output
    manifest = Bundle.load(out).manifest
    teacher = manifest["data"]["teacher"]
    assert teacher["name"] == str(tiny_bundle) and teacher["model_sha256"] == sha256_of(tiny_bundle / "model.onnx")
    assert manifest["data"]["distillation"]["alpha"] == 0.7 and manifest["data"]["distillation"]["temperature"] == 2.0
    assert manifest["data"]["command"].startswith("attn-export distill --teacher")
    assert manifest["tokenizer"] == Bundle.load(tiny_bundle).manifest["tokenizer"]  # the teacher's tokenizer by default
    assert manifest["model"]["lstm_layers"] == 1 and manifest["model"]["embedding_dim"] == 8
    # refit trained on train + validation rows with soft targets (floats kept through LabelledTexts.__add__)
    assert manifest["metrics"]["refit"]["rows"] == 300
    assert "distill" in (out / "MODEL_CARD.md").read_text()
    student = runtime.load(out, provider="cpu")
    _, validation = shuffle_split(read_table(IMDB_TRAIN), 0.1, 0, 300)
    p = student.predict(validation.texts)
    assert p.shape == (30,) and np.all((p >= 0) & (p <= 1))
    history = json.loads((out / "training" / "history.json").read_text())
    assert history["data"]["teacher"]["model_sha256"] == teacher["model_sha256"]


def test_validation_selects_on_true_labels(tiny_bundle, tmp_path):
    """The recorded validation accuracy (what selected the epoch) is the student's accuracy against
    the TRUE labels of the validation rows, not against the teacher's answers."""
    import runtime
    from trainer.data import read_table, shuffle_split

    out = tmp_path / "s"
    result = CliRunner().invoke(export_cli, [
        "distill", "--teacher", str(tiny_bundle), "--train-data", str(IMDB_TRAIN), "--limit", "400", "--epochs", "2",
        "--embedding-dim", "8", "--lstm-units", "4", "--lstm-layers", "1", "--alpha", "1", "--out", str(out)])
    assert result.exit_code == 0, result.output
    metrics = Bundle.load(out).manifest["metrics"]
    _, validation = shuffle_split(read_table(IMDB_TRAIN), 0.1, 0, 400)
    student = runtime.load(out, provider="cpu").predict(validation.texts)
    true_accuracy = float(np.mean((student >= 0.5) == validation.labels))
    assert abs(metrics["validation_accuracy"] - true_accuracy) <= 1 / len(validation) + 1e-9
    history = json.loads((out / "training" / "history.json").read_text())["history"]
    assert metrics["validation_accuracy"] == pytest.approx(max(history["val_accuracy"]), abs=1e-5)


@pytest.mark.parametrize("teacher, message", [
    ("no-such-model", "not a shipped model name"),
    ("./no/such/folder", "no such bundle folder"),
    ("spa-eng", "the teacher must be a sentiment classifier"),
])
def test_cli_bad_teacher_is_one_line(teacher, message, tmp_path):
    out = tmp_path / "never"
    result = CliRunner().invoke(export_cli, ["distill", "--teacher", teacher, "--train-data", str(IMDB_TRAIN), "--out", str(out)])
    assert result.exit_code == 1 and message in result.output, result.output
    assert len(result.output.strip().splitlines()) == 1 and "Traceback" not in result.output
    assert not out.exists()


def test_cli_fitting_options_need_fit_tokenizer(tiny_bundle, tmp_path):
    result = CliRunner().invoke(export_cli, ["distill", "--teacher", str(tiny_bundle), "--train-data", str(IMDB_TRAIN),
                                             "--vocab-size", "300", "--out", str(tmp_path / "x")])
    assert result.exit_code == 2 and "--fit-tokenizer" in result.output
