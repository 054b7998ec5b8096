"""Seq2seq: data split, export parity, greedy/beam decode and their scores, attn-translate."""

import json

import numpy as np
import onnxruntime as ort
import pytest
from click.testing import CliRunner

import runtime
from conftest import DATASETS
from helpers import assert_fused
from runtime.cli import translate_main
from trainer.data import read_pairs, split_pairs

SPA_ENG = DATASETS / "tatoeba" / "spa-eng.tsv.gz"


@pytest.fixture(scope="module")
def splits():
    return split_pairs(read_pairs(SPA_ENG, "spa", "eng"), 0.05, 0.05, seed=0)


def test_split_keeps_sentence_groups_apart(splits):
    train, validation, test = splits
    assert len(train) + len(validation) + len(test) == 117_081
    for side in ("sources", "targets"):
        seen = [{s.strip().lower() for s in getattr(part, side)} for part in splits]
        assert not seen[0] & seen[1] and not seen[0] & seen[2] and not seen[1] & seen[2]
    assert split_pairs(test, 0.3, 0.3, seed=0)[2].sources == split_pairs(test, 0.3, 0.3, seed=0)[2].sources


def _train_and_export(style, splits, folder):
    from trainer.export_seq2seq import export_translator_bundle
    from trainer.fit_seq2seq import save_translator_training, train_translator
    from trainer.models.seq2seq import Seq2SeqConfig

    train, validation, _ = splits
    order = np.random.default_rng(0).permutation(len(train))[:2000]
    # bahdanau also trains with dropout: the exported (inference) graphs must still match Keras.
    # luong keeps the shipped bundle's tokenizers (lower-cased words), bahdanau the default (cased subwords).
    bahdanau = style == "bahdanau"
    config = Seq2SeqConfig(source_vocab=1500, target_vocab=1000, embedding_dim=16, units=16, style=style,
                           tokenizer="sentencepiece" if bahdanau else "word", lowercase=not bahdanau,
                           dropout=0.3 if bahdanau else 0.0, max_source_len=12, max_target_len=12, epochs=2,
                           batch_size=64, learning_rate=1e-2)
    result = train_translator(train.take(order), validation.take(range(200)), config, verbose=0, log=lambda _: None)
    save_translator_training(result, folder)
    manifest = export_translator_bundle(result, folder, parity_sentences=validation.sources[:20], log=lambda _: None)
    return result, folder, manifest


@pytest.fixture(scope="module")
def luong(splits, tmp_path_factory):
    """A tiny trained Luong translator bundle (lower-cased word tokenizers, like the shipped spa-eng):
    (result, folder, manifest). The runtime and CLI tests, which do not depend on the attention
    style, run on this one only."""
    return _train_and_export("luong", splits, tmp_path_factory.mktemp("translator_luong"))


@pytest.fixture(scope="module")
def bahdanau(splits, tmp_path_factory):
    """A tiny trained Bahdanau translator bundle with the default tokenizers (cased SentencePiece)."""
    return _train_and_export("bahdanau", splits, tmp_path_factory.mktemp("translator_bahdanau"))


@pytest.fixture(scope="module", params=["luong", "bahdanau"])
def tiny(request):
    """Each attention style, for the tests of what differs between them (export, parity, training graph)."""
    return request.getfixturevalue(request.param)


def test_export_graphs_and_parity(tiny):
    _, out, manifest = tiny
    assert_fused(out / "encoder.onnx", LSTM=1)
    assert_fused(out / "decoder_step.onnx", LSTM=0)
    assert manifest["parity"]["greedy_sentences_identical"] >= 20
    assert max(v for k, v in manifest["parity"].items() if k.startswith("max_abs")) <= 1e-4


def test_exported_greedy_equals_keras_token_for_token(tiny, splits):
    from trainer.fit_seq2seq import keras_greedy

    result, out, _ = tiny
    sentences = splits[2].sources[:40]
    ours = runtime.load(out, provider="cpu").translate(sentences, beam_size=1)
    end = result.target_tokenizer.id_of("</s>")
    theirs = keras_greedy(result.model, result.source_tokenizer, result.target_tokenizer, sentences)
    assert [t.tokens for t in ours] == [result.target_tokenizer.decode([i for i in ids if i != end]) for ids in theirs]


def test_subword_translator_is_cased_and_never_says_oov(bahdanau, splits):
    _, out, _ = bahdanau
    translator = runtime.load(out, provider="cpu")
    target = translator.target_tokenizer
    assert not target.spec.lowercase and not translator.source_tokenizer.spec.lowercase
    names = "Tom met Mary in Boston."
    assert target.decode_text(target.encode([names])[0][0]) == names  # pieces keep the capitals
    invented = ["Zorblax quiffendó los flimbretes de Qwazú.", "¡Grumpfel! ¿Xyloquenta ñuñú?"] + splits[2].sources[:40]
    for beam in (1, 4):
        translations = translator.translate(invented, beam_size=beam, return_attention=True)
        for t in translations:
            assert "<oov>" not in t.text and 1 not in t.ids and "⁇" not in t.text
            assert len(t.target_labels) == len(t.attention) and len(t.source_labels) == t.attention.shape[1]
            assert not any(label.startswith("▁") for label in t.source_labels + t.target_labels)
        assert sum(any(ch.isupper() for ch in t.text) for t in translations) >= len(translations) // 2


def test_training_folder_rebuilds_the_keras_model(bahdanau, splits):
    from trainer.fit_seq2seq import keras_greedy, load_translator_training

    result, out, _ = bahdanau
    again = load_translator_training(out)
    sentences = splits[2].sources[:10]
    assert again.target_tokenizer.to_dict() == result.target_tokenizer.to_dict()
    assert keras_greedy(again.model, again.source_tokenizer, again.target_tokenizer, sentences) == \
        keras_greedy(result.model, result.source_tokenizer, result.target_tokenizer, sentences)


def test_beam_scores_at_least_greedy(luong, splits):
    """Beam 4 finds length-normalised scores at least as good as greedy's (beam 1, the same loop)."""
    _, out, _ = luong
    translator = runtime.load(out, provider="cpu")
    sentences = splits[2].sources[:30]
    greedy, wide = translator.translate(sentences, beam_size=1), translator.translate(sentences, beam_size=4)
    assert sum(w.score >= g.score - 1e-6 for w, g in zip(wide, greedy)) >= 27
    # strictly: tests/test_search.py
    assert np.mean([w.score for w in wide]) >= np.mean([g.score for g in greedy]) - 1e-6


def test_beam_scores_are_length_normalised_log_probabilities(luong, splits):
    _, out, _ = luong
    translator = runtime.load(out, provider="cpu")
    encoder = ort.InferenceSession(str(out / "encoder.onnx"))
    step = ort.InferenceSession(str(out / "decoder_step.onnx"))
    sentences = splits[2].sources[:10]
    for sentence, result in zip(sentences, translator.translate(sentences, beam_size=3, max_length=12)):
        source, _ = translator.source_tokenizer.encode([sentence])
        states, h, c = encoder.run(["states", "h", "c"], {"source": source})
        ids = [translator.target_tokenizer.id_of(t) for t in result.tokens]
        ids += [translator.end_id] if len(ids) < 12 else []
        previous, total = translator.start_id, 0.0
        for token in ids:  # recompute step by step through the decoder graph
            log_probs, h, c = step.run(["log_probs", "next_h", "next_c"], {
                "previous": np.array([previous], np.int32), "h": h, "c": c, "states": states,
                "source_mask": source != 0})
            total += float(log_probs[0, token])
            previous = token
        assert result.score == pytest.approx(total / len(ids), abs=1e-4)


def test_attn_translate_end_to_end(luong, tmp_path):
    _, out, _ = luong
    source = tmp_path / "sentences.txt"
    source.write_text("Hola.\n\n¿Dónde está la estación?\nMe gusta leer libros.\n", encoding="utf-8")
    runner = CliRunner()
    result = runner.invoke(translate_main,
                           [str(source), "--model", str(out), "--plot-attention", str(tmp_path / "plots")])
    assert result.exit_code == 0, result.output
    assert len(result.stdout.splitlines()) == 4 and "translated 4 sentences" in result.output
    assert sorted(p.name for p in (tmp_path / "plots").iterdir()) == ["1.png", "2.png", "3.png", "4.png"]
    as_csv = runner.invoke(translate_main, [str(source), "--model", str(out), "--format", "jsonl", "--beam-size", "1"])
    assert [json.loads(line)["id"] for line in as_csv.stdout.splitlines()] == ["1", "2", "3", "4"]
    piped = runner.invoke(translate_main, ["-", "--model", str(out)], input="Hola.\nAdiós.\n")
    assert piped.exit_code == 0 and len(piped.stdout.splitlines()) == 2


def test_attn_translate_bad_inputs(luong, tiny_bundle, tmp_path):
    _, out, _ = luong
    runner = CliRunner()
    missing = runner.invoke(translate_main, [str(tmp_path / "none.txt"), "--model", str(out)])
    assert missing.exit_code == 1 and "none.txt: no such file" in missing.output
    empty = tmp_path / "empty.txt"
    empty.write_text("")
    result = runner.invoke(translate_main, [str(empty), "--model", str(out), "-o", str(tmp_path / "o.txt")])
    assert result.exit_code == 1 and "no data rows" in result.output and not (tmp_path / "o.txt").exists()
    wrong = runner.invoke(translate_main, [str(empty), "--model", str(tiny_bundle)])
    assert wrong.exit_code == 1 and "needs a translation bundle" in wrong.output
    column = tmp_path / "x.csv"
    column.write_text("id,english\n1,hello\n")
    result = runner.invoke(translate_main, [str(column), "--model", str(out)])
    assert result.exit_code == 1 and "the columns are: 'id', 'english'" in result.output


def test_attn_score_refuses_a_translation_bundle(luong, tmp_path):
    from runtime.cli import main as score_cli

    _, out, _ = luong
    source = tmp_path / "in.csv"
    source.write_text("text\nhola\n")
    result = CliRunner().invoke(score_cli, [str(source), "--model", str(out)])
    assert result.exit_code == 1 and "attn-score needs a sentiment bundle" in result.output


def test_teacher_forcing_equals_step_by_step(tiny, splits):
    """The training graph (scanned) and the exported step model compute the same thing."""
    import keras

    result, _, _ = tiny
    from trainer.fit_seq2seq import encode_targets

    source, _ = result.source_tokenizer.encode(splits[1].sources[:8])
    previous, _, _ = encode_targets(result.target_tokenizer, splits[1].targets[:8])
    full = np.asarray(keras.ops.log_softmax(result.model.trainer.predict_on_batch([source, previous]), -1))
    encoded = {k: np.asarray(v) for k, v in result.model.encoder.predict_on_batch(source).items()}
    step, h, c = result.model.step_model(), encoded["h"], encoded["c"]
    for t in range(previous.shape[1]):
        out = step.predict_on_batch([previous[:, t], h, c, encoded["states"], source != 0])
        h, c = np.asarray(out["next_h"]), np.asarray(out["next_c"])
        np.testing.assert_allclose(np.asarray(out["log_probs"]), full[:, t], atol=1e-4)
    if result.model.config.dropout:  # dropout acts while training only
        noisy = np.asarray(keras.ops.log_softmax(result.model.trainer([source, previous], training=True), -1))
        assert np.abs(noisy - full).max() > 1e-3


def test_translator_recipe_data_and_recorded_test_split(luong, splits, tmp_path):
    """What `attn-export train-translator` records, from the library (trainer/recipe_seq2seq.py): the
    split, a seeded --limit sample and the provenance; the test split scored once on the bundle."""
    import shutil

    from runtime.bundle import Bundle, sha256_of
    from trainer.evaluate_seq2seq import evaluate
    from trainer.recipe_seq2seq import evaluate_test_split, load_translator_data

    pairs = tmp_path / "pairs.tsv"
    test = splits[2].take(range(400))
    pairs.write_text("es\ten\n" + "".join(f"{s}\t{t}\n" for s, t in zip(test.sources, test.targets)), encoding="utf-8")
    whole = load_translator_data(pairs, source_column="es", target_column="en", validation_fraction=0.2,
                                 test_fraction=0.1, seed=3)
    assert (whole.train.sources, whole.validation.sources, whole.test.sources) == tuple(
        part.sources for part in split_pairs(read_pairs(pairs, "es", "en"), 0.2, 0.1, 3))
    data = load_translator_data(pairs, source_column="es", target_column="en", validation_fraction=0.2,
                                test_fraction=0.1, seed=3, limit=50)
    assert len(data.train) == 50 and set(data.train.sources) < set(whole.train.sources) and data.test == whole.test
    assert data.provenance == {"pairs": str(pairs), "pairs_sha256": sha256_of(pairs), "direction": "es->en",
                               "train_pairs": 50, "validation_pairs": len(whole.validation),
                               "test_pairs": len(whole.test), "split_seed": 3, "validation_fraction": 0.2,
                               "test_fraction": 0.1}

    folder = tmp_path / "bundle"
    shutil.copytree(luong[1], folder)
    report = evaluate_test_split(folder, data.test, beam_size=2)
    assert report == evaluate(runtime.load(folder, provider="cpu"), data.test, beam_size=2)
    assert Bundle.load(folder).manifest["metrics"]["test"] == report and report["sentences"] == len(data.test) > 0


class _Echo:
    """A stand-in translator (not the code under test): returns the given outputs, in order."""

    def __init__(self, outputs):
        self.outputs = outputs

    def translate(self, sentences, beam_size=4):
        from types import SimpleNamespace

        assert len(sentences) == len(self.outputs)
        return [SimpleNamespace(text=t, source_tokens=s.split()) for s, t in zip(sentences, self.outputs)]


def test_evaluate_scores_and_buckets(splits):
    from trainer.evaluate_seq2seq import evaluate

    test = splits[2].take(range(300))
    perfect = evaluate(_Echo(test.targets), test)
    assert perfect["bleu"] == 100.0 and perfect["chrf"] == 100.0 and perfect["sentences"] == 300
    assert sum(b["sentences"] for b in perfect["bleu_by_source_length"].values()) == 300
    assert all(b["bleu"] == 100.0 for b in perfect["bleu_by_source_length"].values())
    # a translator that drops each sentence's last word scores below, in every bucket
    clipped = evaluate(_Echo([" ".join(t.split()[:-1]) for t in test.targets]), test)
    assert 20 < clipped["bleu"] < 90 and all(b["bleu"] < 100 for b in clipped["bleu_by_source_length"].values())


def test_compare_translators_table_plot_and_split_check(luong, tmp_path):
    import shutil

    from runtime.bundle import MANIFEST, write_manifest
    from trainer.cli import main as export_cli

    _, out, _ = luong
    buckets = {"1-5": {"bleu": 40.0, "sentences": 10}, "6-10": {"bleu": 30.0, "sentences": 5}}
    folders = []
    for name, bleu, seed in (("att", 35.0, 0), ("none", 25.0, 0), ("other", 20.0, 1)):
        folder = tmp_path / name
        shutil.copytree(out, folder)
        manifest = json.loads((folder / MANIFEST).read_text())
        manifest["data"] = {"pairs_sha256": "x", "direction": "spa->eng", "split_seed": seed, "test_pairs": 15}
        manifest["metrics"]["test"] = {"bleu": bleu, "chrf": bleu + 10, "bleu_by_source_length": {
            k: {**v, "bleu": v["bleu"] - (35.0 - bleu)} for k, v in buckets.items()}}
        write_manifest(folder, manifest)
        folders.append(str(folder))
    plot = tmp_path / "bleu.png"
    result = CliRunner().invoke(export_cli, ["compare-translators", *folders[:2], "--name", "attention",
                                                             "--name", "none", "--plot", str(plot)])
    assert result.exit_code == 0, result.output
    assert "| attention | 35.00 | 45.00 | 40.00 | 30.00 |" in result.stdout
    assert "| none | 25.00 | 35.00 | 30.00 | 20.00 |" in result.stdout and "1-5 (10)" in result.stdout
    assert plot.read_bytes()[:4] == b"\x89PNG"
    mixed = CliRunner().invoke(export_cli,
                               ["compare-translators", folders[0], folders[2], "--name", "a", "--name", "b"])
    assert mixed.exit_code == 1 and "different test split" in mixed.output


def test_init_from_continues_weights_tokenizers_and_adam_state(luong, splits, tmp_path):
    """train-translator --init-from (library form): the saved network resumes, not restarts. With a
    vanishing learning rate the continued model keeps the saved weights, and Adam's step
    count carries on from the saved run's."""
    from trainer.fit_seq2seq import train_translator
    from trainer.recipe_seq2seq import continued_config

    result, folder, _ = luong
    saved_steps = int(result.model.trainer.optimizer.iterations.numpy())
    assert saved_steps > 0
    train, validation, _ = splits
    config, record = continued_config(folder, SPA_ENG, epochs=1, learning_rate=1e-12, batch_size=64)
    order = np.random.default_rng(0).permutation(len(train))[:2000]
    continued = train_translator(train.take(order), validation.take(range(200)), config, verbose=0,
                                 log=lambda _: None, init_from=folder)
    assert continued.source_tokenizer.vocab == result.source_tokenizer.vocab
    for mine, saved in zip(continued.model.trainer.get_weights(), result.model.trainer.get_weights()):
        np.testing.assert_allclose(mine, saved, atol=1e-6)  # the saved weights, not a fresh initialisation
    assert int(continued.model.trainer.optimizer.iterations.numpy()) == saved_steps + 2000 // 64 + 1
    with pytest.raises(Exception, match="would leak its test split"):
        other = tmp_path / "other.tsv"
        other.write_text("eng\tspa\nHi.\tHola.\n", encoding="utf-8")
        record_sha = record  # the saved run recorded no pairs file in this fixture: give it one
        (folder / "training" / "history.json").write_text(json.dumps({**record_sha, "data": {
            "pairs": str(SPA_ENG), "pairs_sha256": "0" * 64}}), encoding="utf-8")
        continued_config(folder, other, epochs=1)


def test_cli_train_translator_no_test_score_never_reads_the_test_split(tmp_path):
    """--no-test-score (a run to be continued with --init-from): the bundle is written and its
    manifest holds no test figure, and the summary line says the test split was not scored. Then
    `evaluate-translator` scores the same test split once (not on other pairs, never twice)."""
    from trainer.cli import main as export_cli

    out = tmp_path / "run"
    result = CliRunner().invoke(export_cli, [
        "train-translator", "--pairs", str(SPA_ENG), "--limit", "64", "--epochs", "1", "--units", "4",
        "--embedding-dim", "4", "--tokenizer", "word", "--source-vocab", "50", "--target-vocab", "50",
        "--validation-fraction", "0.002", "--test-fraction", "0.003", "--no-test-score", "--out", str(out)])
    assert result.exit_code == 0, result.output
    assert "test split not scored" in result.stderr and "test BLEU" not in result.stderr
    manifest = json.loads((out / "manifest.json").read_text())
    assert "test" not in (manifest.get("metrics") or {})
    assert (out / "training" / "seq2seq.weights.h5").is_file()  # what --init-from continues

    # later, for the run that ships: `attn-export evaluate-translator` scores the recorded test split once
    other = tmp_path / "other.tsv"
    other.write_text("eng\tspa\nHi.\tHola.\n", encoding="utf-8")
    wrong = CliRunner().invoke(export_cli, ["evaluate-translator", str(out), "--pairs", str(other)])
    assert wrong.exit_code == 1 and "not the pairs file" in wrong.stderr and "Traceback" not in wrong.output
    scored = CliRunner().invoke(export_cli, ["evaluate-translator", str(out), "--beam-size", "1"])
    assert scored.exit_code == 0, scored.output
    test = json.loads((out / "manifest.json").read_text())["metrics"]["test"]
    assert test["sentences"] == manifest["data"]["test_pairs"] < 1000 and test["beam_size"] == 1  # its fractions
    assert f"test BLEU {test['bleu']:.2f}" in scored.stderr and "by source pieces: 1-5" in scored.stderr
    again = CliRunner().invoke(export_cli, ["evaluate-translator", str(out)])
    assert again.exit_code == 1 and "scored already" in again.stderr
    assert json.loads((out / "manifest.json").read_text())["metrics"]["test"] == test  # untouched
