"""The bundles shipped in artifacts/: they load, verify, classify obvious reviews, and meet their targets."""

from pathlib import Path

import pytest

import runtime
from runtime.bundle import Bundle

ARTIFACTS = Path(__file__).resolve().parents[1] / "artifacts"

POSITIVE = [
    "An absolute masterpiece. The acting is superb, the story is moving and I loved every minute of it.",
    "One of the best films I have ever seen: brilliant, funny and beautifully shot. Highly recommended!",
    "A wonderful, heartwarming movie with a fantastic cast. I would happily watch it again.",
]
NEGATIVE = [
    "A complete waste of time. The plot is stupid, the acting is awful and the ending is terrible.",
    "Boring, badly written and far too long. The worst movie I have seen this year.",
    "Dreadful. I hated every minute of this mess and nearly walked out.",
]


# The issues' targets: IMDB 88.5 %, NSMC 86.5 %, measured through attn-score and recorded by `bench accuracy --record`.
@pytest.mark.parametrize("name, folder, minimum", [("imdb", "imdb-bilstm-attention", 0.885),
                                                   ("nsmc", "nsmc-bilstm-attention", 0.865)])
def test_shipped_bundle_verifies_and_records_its_target(name, folder, minimum):
    bundle = Bundle.load(ARTIFACTS / folder, verify=True)  # checksums verified
    assert runtime.shipped_bundles()[name].name == folder
    recorded = bundle.manifest["metrics"]["attn_score_test"]
    assert recorded["accuracy"] >= minimum and recorded["rows"] in (25_000, 50_000)
    assert (ARTIFACTS / folder / "MODEL_CARD.md").is_file()


def test_default_model_classifies_obvious_reviews():
    model = runtime.load()  # the shipped default
    assert model.bundle.path.name == "imdb-bilstm-attention"
    assert model.predict_labels(POSITIVE) == ["positive"] * 3
    assert model.predict_labels(NEGATIVE) == ["negative"] * 3
    top = model.explain(["A wonderful film, brilliant and moving."], top_k=3)[0]
    assert {token for token, _ in top} & {"wonderful", "brilliant", "moving"}


def test_korean_model_classifies_obvious_reviews():
    model = runtime.load("nsmc")
    positive = ["정말 재밌어요 최고의 영화입니다", "배우들 연기가 너무 좋고 감동적이었어요 강추"]
    negative = ["진짜 최악이다 돈 아깝다", "너무 지루하고 재미없어요 시간 낭비"]
    assert model.predict_labels(positive) == ["positive"] * 2
    assert model.predict_labels(negative) == ["negative"] * 2
    assert model.predict(["Great 영화 😀 ㅋㅋㅋ", ""]).shape == (2,)


def test_int8_variant_passed_its_gate():
    bundle = Bundle.load(ARTIFACTS / "imdb-bilstm-attention-int8")
    gate = bundle.manifest["metrics"]["int8_gate"]
    assert bundle.manifest["precision"] == "int8" and gate["drop_points"] <= 0.5 and not gate["forced"]


def test_shipped_translator_translates_and_its_attention_aligns():
    translator = runtime.load("spa-eng")
    results = translator.translate(["¿Dónde está la estación?", "El perro está durmiendo en el sofá."], beam_size=4,
                                   return_attention=True)
    assert "station" in results[0].tokens and "dog" in results[1].tokens
    # the weight that produced a word sits on the word it translates (not collapsed onto one position)
    for result, target, source in ((results[0], "station", "estación"), (results[1], "dog", "perro"),
                                   (results[1], "sleeping", "durmiendo")):
        row = result.attention[result.tokens.index(target)]
        assert result.source_tokens[int(row.argmax())] == source
    assert Bundle.load(ARTIFACTS / "spa-eng-attention").manifest["metrics"]["test"]["bleu"] >= 35
