"""Training learns; every attention kind exports to fused LSTM ops with parity; the bundle is guarded."""

import json

import numpy as np
import onnx
import pytest
from click.testing import CliRunner

from conftest import IMDB_TRAIN
from helpers import assert_fused, seeded_classifier
from runtime.bundle import Bundle, BundleError
from runtime.session import cpu_flags
from trainer import export as E
from trainer.attention import KINDS
from trainer.cli import main as export_cli
from trainer.fit import accuracy, predict_probabilities


def test_tiny_classifier_learns(tiny_result, imdb_split):
    _, held_out = imdb_split
    assert len(held_out) == 1000
    acc = accuracy(predict_probabilities(tiny_result.model, tiny_result.tokenizer, held_out.texts), held_out.labels)
    assert acc > 0.70, f"accuracy on 1,000 held-out reviews {acc:.3f}"


@pytest.fixture(scope="module")
def small_split(imdb_split):
    train, held_out = imdb_split
    return train.take(np.arange(800)), held_out.take(np.arange(200))


@pytest.mark.parametrize("kind", KINDS)
def test_each_attention_kind_exports_fused_with_parity(kind, small_split, tmp_path):
    """Export needs no learning: an untrained seeded model (tf2onnx tests/test_lstm.py style)."""
    model, config, tokenizer = seeded_classifier(small_split[0].texts, attention=kind)
    manifest = E.export_bundle(model, config, tokenizer, tmp_path, log=lambda _: None)
    proto = onnx.load(tmp_path / "model.onnx")
    onnx.checker.check_model(proto, full_check=True)
    assert_fused(proto, LSTM=2)
    for node in (node for node in proto.graph.node if node.op_type == "LSTM"):
        assert node.input[4] == "sequence_lens"
        assert any(a.name == "direction" and a.s == b"bidirectional" for a in node.attribute)
    assert [i.name for i in proto.graph.input] == ["tokens"]
    assert sorted(o.name for o in proto.graph.output) == ["attention", "probability"]
    assert manifest["parity"]["max_abs_probability"] <= 1e-4
    assert manifest["parity"]["max_abs_attention"] <= 1e-4
    assert Bundle.load(tmp_path).manifest["attention"] == kind


def test_parity_gate_catches_a_graph_without_sequence_lengths(small_split, tmp_path):
    model, config, tokenizer = seeded_classifier(small_split[0].texts)
    passes = [p for p in E.PASSES if p is not E.pass_sequence_lens]
    with pytest.raises(E.ParityError, match=r"output 'probability' differs from Keras by max \|Δ\| = "):
        E.export_bundle(model, config, tokenizer, tmp_path, passes=passes, log=lambda _: None)
    assert list(tmp_path.iterdir()) == []  # a failed gate writes no bundle and leaves no staging folder


def test_tampered_graph_fails_checksum(tiny_bundle, tmp_path):
    import shutil

    copy = tmp_path / "bundle"
    shutil.copytree(tiny_bundle, copy)
    with open(copy / "model.onnx", "ab") as handle:
        handle.write(b"\0")
    with pytest.raises(BundleError, match="sha256 does not match"):
        Bundle.load(copy)


def test_manifest_is_validated(tiny_bundle, tmp_path):
    import shutil

    copy = tmp_path / "bundle"
    shutil.copytree(tiny_bundle, copy)
    manifest = json.loads((copy / "manifest.json").read_text())
    assert manifest["producer"]["tf2onnx"] and manifest["graphs"]["model"]["sha256"]
    del manifest["labels"]
    (copy / "manifest.json").write_text(json.dumps(manifest))
    with pytest.raises(BundleError, match=r"a sentiment bundle needs 2 label names, found \[\]"):
        Bundle.load(copy)
    del manifest["tokenizer"]
    (copy / "manifest.json").write_text(json.dumps(manifest))
    with pytest.raises(BundleError, match="missing field 'tokenizer'"):
        Bundle.load(copy)
    (copy / "manifest.json").write_text("{broken")
    with pytest.raises(BundleError, match="corrupt manifest"):
        Bundle.load(copy)


def test_cli_convert_errors(tmp_path):
    runner = CliRunner()
    tokenizer = tmp_path / "tok.json"
    from trainer.tokenizer_fit import fit_tokenizer

    fit_tokenizer(["a b"], 5).save(tokenizer)
    missing = runner.invoke(export_cli,
                            ["convert", str(tmp_path / "no.keras"), "--tokenizer", str(tokenizer),
                             "--out", str(tmp_path / "o")])
    assert missing.exit_code == 1 and "no.keras: no such model file" in missing.output
    corrupt = tmp_path / "bad.keras"
    corrupt.write_bytes(b"not a zip")
    result = runner.invoke(export_cli,
                           ["convert", str(corrupt), "--tokenizer", str(tokenizer), "--out", str(tmp_path / "o")])
    assert result.exit_code == 1 and "cannot load the Keras model" in result.output


def test_cli_rejects_unsupported_layer(tmp_path):
    import keras

    model = keras.Sequential([keras.Input((None,), dtype="int32"), keras.layers.Embedding(10, 4), keras.layers.GRU(3)])
    model.save(tmp_path / "gru.keras")
    from trainer.tokenizer_fit import fit_tokenizer

    fit_tokenizer(["a"], 5).save(tmp_path / "tok.json")
    result = CliRunner().invoke(export_cli, ["convert", str(tmp_path / "gru.keras"),
                                             "--tokenizer", str(tmp_path / "tok.json"), "--out", str(tmp_path / "o")])
    assert result.exit_code == 1 and "unsupported layer" in result.output and "GRU" in result.output


def test_int8_export_quantizes_lstm_and_gates_accuracy(tiny_result, imdb_split, tmp_path):
    _, held_out = imdb_split
    gate_data = (held_out.texts[:300], held_out.labels[:300])
    args = (tiny_result.model, tiny_result.config, tiny_result.tokenizer)
    manifest = E.export_bundle(*args, tmp_path / "ok", quantize="int8", gate_data=gate_data, log=lambda _: None)
    assert_fused(tmp_path / "ok" / "model.onnx", DynamicQuantizeLSTM=2, LSTM=0)
    gate = manifest["metrics"]["int8_gate"]
    assert manifest["precision"] == "int8" and gate["drop_points"] <= 0.5 and gate["rows"] == 300
    # exact: the same machine, kernels and batches (another CPU's int8 kernels give other figures: cpu_flags)
    assert gate["int8_accuracy"] == round(E.graph_accuracy(tmp_path / "ok" / "model.onnx",
                                                           tiny_result.tokenizer, *gate_data), 5)
    assert gate["cpu_flags"] == cpu_flags()

    # a limit no graph can meet: the gate refuses with both figures, and --force keeps the graph
    strict = dict(quantize="int8", gate_data=gate_data, max_int8_drop_points=-1.0, log=lambda _: None)
    with pytest.raises(E.QuantizationError,
                       match=r"int8 accuracy drop .* > -1.0 \(fp32 .* % vs int8 .* % on 300 validation rows\)"):
        E.export_bundle(*args, tmp_path / "refused", **strict)
    assert list((tmp_path / "refused").iterdir()) == []  # neither graph, staging folder nor manifest
    forced = E.export_bundle(*args, tmp_path / "forced", force=True, **strict)
    assert forced["metrics"]["int8_gate"]["forced"] is True


CLI_TINY = ["train", "--train-data", str(IMDB_TRAIN), "--limit", "300", "--max-len", "30", "--vocab-size", "300",
            "--embedding-dim", "8", "--lstm-units", "4", "--attention", "dot", "--epochs", "2", "--refit"]


@pytest.fixture(scope="module")
def cli_ensemble(tmp_path_factory):
    """`attn-export train --members 2 --refit` on 300 rows (dot attention: `convert` must recover a
    non-default kind): checked by the ensemble tests, and the first bundle of the combine test."""
    out = tmp_path_factory.mktemp("cli_ensemble") / "e"
    result = CliRunner().invoke(export_cli, CLI_TINY + ["--members", "2", "--out", str(out)])
    assert result.exit_code == 0, result.output
    return out


@pytest.fixture(scope="module")
def cli_single(cli_ensemble, tmp_path_factory):
    """(bundle, arguments, output) of `attn-export train` of one network (no --refit: the ensemble
    covers it) on `cli_ensemble`'s tokenizer, another seed and the same split: what the train/convert
    and combine tests check (one training where each used to run its own)."""
    out = tmp_path_factory.mktemp("cli_single") / "s"
    args = [a for a in CLI_TINY if a != "--refit"] + ["--seed", "5", "--split-seed", "0", "--tokenizer",
                                                     str(cli_ensemble / "training" / "tokenizer.json"),
                                                     "--out", str(out)]
    result = CliRunner().invoke(export_cli, args)
    assert result.exit_code == 0, result.output
    return out, args, result.output


def test_cli_train_writes_bundle_and_convert_reexports(cli_single, tmp_path):
    out, args, output = cli_single
    assert "parity: max |Δprobability|" in output and "validation accuracy" in output
    assert Bundle.load(out).manifest["data"]["train_rows"] == 270

    again = CliRunner().invoke(export_cli, args)  # existing folder without --force
    assert again.exit_code != 0 and "pass --force" in again.output

    converted = tmp_path / "c"
    result = CliRunner().invoke(export_cli, ["convert", str(out / "training" / "model.keras"),
                                             "--tokenizer", str(out / "training" / "tokenizer.json"),
                                             "--out", str(converted)])
    assert result.exit_code == 0, result.output
    assert Bundle.load(converted).manifest["attention"] == "dot"
    # the re-export records the trained network's settings and its tokenizer's max length, not defaults
    trained, again = Bundle.load(out).manifest, Bundle.load(converted).manifest
    assert again["model"] == trained["model"] and again["model"]["max_len"] == again["tokenizer"]["spec"]["max_len"]


def test_cli_refit_trains_on_train_plus_validation(cli_ensemble, cli_single):
    manifest = Bundle.load(cli_ensemble).manifest
    refit = manifest["metrics"]["refit"]
    assert refit["rows"] == 300 and refit["epochs"] == manifest["metrics"]["members"]["epochs"]
    assert manifest["data"]["train_rows"] == 270  # the selection run's split is still recorded
    assert "refit" not in Bundle.load(cli_single[0]).manifest["metrics"]  # and no refit without --refit


def test_ensemble_averages_its_members_and_exports_with_parity(cli_ensemble):
    """--members: each member keeps its own weights; the combined output is their numpy mean; the
    export has every member's LSTMs fused with sequence lengths and matches the Keras ensemble
    (the export's parity gate, recorded in the manifest)."""
    import keras

    import trainer.attention  # noqa: F401  (registers the attention layers for loading)
    from runtime.tokenizer import Tokenizer
    from trainer.models.classifier import build_classifier, config_from_model, member_config

    manifest = Bundle.load(cli_ensemble).manifest
    model = keras.saving.load_model(cli_ensemble / "training" / "model.keras")
    config = config_from_model(model)
    assert config.members == manifest["model"]["members"] == 2 and len(manifest["metrics"]["members"]["epochs"]) == 2
    ids, _ = Tokenizer.load(cli_ensemble / "training" / "tokenizer.json").encode(
        ["a great film", "awful and boring", "", "the plot was bad but the music was good"])
    outputs = [model.get_layer(f"member_{k}")(ids, training=False) for k in range(2)]
    # different seeds
    assert np.abs(np.asarray(outputs[0]["probability"]) - np.asarray(outputs[1]["probability"])).max() > 1e-4
    combined = model(ids, training=False)
    for name in ("probability", "attention"):
        np.testing.assert_allclose(np.asarray(combined[name]),
                                   np.mean([np.asarray(o[name]) for o in outputs], 0), atol=1e-6)
    # a member alone is the single network of its seed
    single = build_classifier(member_config(config, 1))
    single.set_weights(model.get_layer("member_1").get_weights())
    np.testing.assert_allclose(np.asarray(single(ids, training=False)["probability"]),
                               np.asarray(outputs[1]["probability"]), atol=1e-6)

    assert_fused(cli_ensemble / "model.onnx", LSTM=2 * config.lstm_layers)
    assert manifest["parity"]["max_abs_probability"] <= 1e-4


def test_cli_ensemble_refit_trains_each_member_for_its_own_epochs(cli_ensemble, tmp_path):
    out = cli_ensemble
    metrics = Bundle.load(out).manifest["metrics"]
    assert (metrics["refit"]["epochs"] == metrics["members"]["epochs"]
            and len(metrics["members"]["validation_accuracy"]) == 2)
    # the saved Keras ensemble re-exports through `convert` (its config is recovered from the members)
    again = CliRunner().invoke(export_cli, ["convert", str(out / "training" / "model.keras"), "--tokenizer",
                                            str(out / "training" / "tokenizer.json"), "--out", str(tmp_path / "c")])
    assert again.exit_code == 0, again.output
    assert Bundle.load(tmp_path / "c").manifest["model"]["members"] == 2


def test_cli_combine_averages_bundles_that_share_a_tokenizer(cli_ensemble, cli_single, tmp_path):
    import shutil

    import runtime
    from runtime.tokenizer import Tokenizer
    from trainer.tokenizer_fit import fit_tokenizer

    a, b, c = cli_ensemble, cli_single[0], tmp_path / "c"  # a: a 2-network ensemble; b: one network on a's tokenizer
    assert Bundle.load(b).manifest["data"]["split_seed"] == 0
    result = CliRunner().invoke(export_cli, ["combine", str(a), str(b), "--out", str(c)])
    assert result.exit_code == 0, result.output
    assert Bundle.load(c).manifest["model"]["members"] == 3 and Bundle.load(c).manifest["model"]["max_len"] == 30
    assert_fused(c / "model.onnx", LSTM=6)
    texts = ["a great film with brilliant actors", "awful and boring", "", "the plot was bad but the music was good"]
    pa, pb, pc = (runtime.load(x, provider="cpu").predict(texts) for x in (a, b, c))
    np.testing.assert_allclose(pc, (2 * pa + pb) / 3, atol=1e-5)  # every network counts once

    # a model with its own tokenizer (here: b with a tokenizer fitted on other texts) is refused, naming the fix
    other = tmp_path / "o"
    shutil.copytree(b, other)
    fit_tokenizer(texts, 300, Tokenizer.load(b / "training" / "tokenizer.json").spec).save(
        other / "training" / "tokenizer.json")
    refused = CliRunner().invoke(export_cli, ["combine", str(a), str(other), "--out", str(tmp_path / "x")])
    assert refused.exit_code == 1 and "tokenizer differs" in refused.output and "--tokenizer" in refused.output
    assert not (tmp_path / "x").exists()
