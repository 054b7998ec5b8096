"""Korean (NSMC) with the sentencepiece tokenizer: learns, exports with parity, scores mixed text."""

import numpy as np
import pytest
from click.testing import CliRunner

import runtime
from conftest import DATASETS
from runtime.cli import main as score_cli
from runtime.tokenizer import TokenizerSpec

NSMC_TRAIN = DATASETS / "nsmc" / "ratings_train.tsv.gz"


@pytest.fixture(scope="module")
def nsmc_slices():
    from trainer.data import read_table

    data = read_table(NSMC_TRAIN, text_column="document")
    order = np.random.default_rng(0).permutation(len(data))
    return data.take(order[:4000]), data.take(order[4000:5000])


@pytest.fixture(scope="module")
def nsmc_result(nsmc_slices):
    from conftest import TINY
    from trainer.fit import train_classifier
    from trainer.models.classifier import ClassifierConfig

    config = ClassifierConfig(**{**TINY, "vocab_size": 2000, "max_len": 48, "epochs": 2})
    return train_classifier(*nsmc_slices, config, TokenizerSpec(mode="sentencepiece", max_len=48),
                            verbose=0, log=lambda _: None)


def test_tiny_nsmc_model_learns(nsmc_result, nsmc_slices):
    from trainer.fit import accuracy, predict_probabilities

    _, held_out = nsmc_slices
    acc = accuracy(predict_probabilities(nsmc_result.model, nsmc_result.tokenizer, held_out.texts), held_out.labels)
    assert acc > 0.70, f"accuracy on 1,000 held-out NSMC reviews {acc:.3f}"


@pytest.fixture(scope="module")
def nsmc_bundle(nsmc_result, tmp_path_factory):
    from trainer.export import export_bundle

    out = tmp_path_factory.mktemp("nsmc_bundle")
    export_bundle(nsmc_result.model, nsmc_result.config, nsmc_result.tokenizer, out, log=lambda _: None)
    return out


def test_korean_bundle_parity_and_mixed_text(nsmc_result, nsmc_bundle, nsmc_slices):
    from trainer.fit import predict_probabilities

    classifier = runtime.load(nsmc_bundle, provider="cpu")
    assert classifier.tokenizer.spec.mode == "sentencepiece"
    texts = nsmc_slices[1].texts[:300] + ["정말 최고의 영화 😀 Great movie!!", "ㅋㅋㅋ 🙄 worst", "", "😀😀😀"]
    expected = predict_probabilities(nsmc_result.model, nsmc_result.tokenizer, texts)
    np.testing.assert_allclose(classifier.predict(texts), expected, atol=1e-5)
    top = classifier.explain(["정말 재밌다 최고의 영화"], top_k=3)[0]
    assert top and all("\u2581" not in token for token, _ in top)
    assert "".join(token for token, _ in top) and all(token in "정말재밌다최고의영화" for token, _ in top)


def test_attn_score_reads_tsv_with_literal_quotes(nsmc_bundle, tmp_path):
    source = tmp_path / "in.tsv"
    source.write_text('id\tdocument\tlabel\n1\t"최고" 라는 말밖에\t1\n2\t\t0\n3\t별로 "재미" 없음\t0\n',
                      encoding="utf-8")
    result = CliRunner().invoke(score_cli, [str(source), "--model", str(nsmc_bundle), "--text-column", "document"])
    assert result.exit_code == 0, result.output
    assert [line.split(",")[0] for line in result.stdout.splitlines()[1:]] == ["1", "2", "3"]
