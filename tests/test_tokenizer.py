import json

import numpy as np
import pytest

from runtime.tokenizer import OOV_ID, PAD_ID, Tokenizer, TokenizerError, TokenizerSpec
from trainer.tokenizer_fit import fit_tokenizer


def fitted(**spec):
    texts = ["the cat sat", "the dog sat", "a cat", "zebra"]
    return fit_tokenizer(texts, vocab_size=10, spec=TokenizerSpec(**spec))


def test_fit_keeps_most_frequent_with_deterministic_ties():
    tok = fit_tokenizer(["b a c", "a b", "d"], vocab_size=4)  # a, b: 2 each; c, d: 1 each
    assert tok.vocab == ["a", "b"]  # ties broken by text, limited to vocab_size - 2
    assert fit_tokenizer(["d", "a b", "b a c"], vocab_size=4).vocab == tok.vocab  # order-independent


def test_encode_right_pads_to_longest_in_batch_and_returns_lengths():
    tok = fitted()
    ids, lengths = tok.encode(["the cat sat", "cat", ""])
    assert ids.dtype == np.int32 and lengths.dtype == np.int32
    assert ids.shape == (3, 3)
    assert lengths.tolist() == [3, 1, 0]
    assert ids[1, 1:].tolist() == [PAD_ID, PAD_ID] and ids[2].tolist() == [PAD_ID] * 3
    assert tok.decode(ids[0]) == ["the", "cat", "sat"]


def test_unknown_words_get_oov_and_ids_start_at_two():
    tok = fitted()
    ids, _ = tok.encode(["the unicorn"])
    assert ids[0, 0] >= 2 and ids[0, 1] == OOV_ID


def test_all_empty_batch_has_width_one():
    ids, lengths = fitted().encode(["", "   ", "!!!"])
    assert ids.shape == (3, 1) and lengths.tolist() == [0, 0, 0]


@pytest.mark.parametrize("truncation, expected", [("pre", ["c", "d"]), ("post", ["a", "b"])])
def test_truncation_side(truncation, expected):
    tok = fit_tokenizer(["a b c d"], vocab_size=10, spec=TokenizerSpec(max_len=2, truncation=truncation))
    assert tok.tokenize("a b c d") == expected
    ids, lengths = tok.encode(["a b c d", "a"])
    assert ids.shape == (2, 2) and lengths.tolist() == [2, 1]
    assert tok.decode(ids[0]) == expected


def test_lowercase_html_breaks_and_punctuation():
    strip = fit_tokenizer([], vocab_size=3)
    assert strip.tokenize("Great!<br /><br />I DON'T care.") == ["great", "i", "don't", "care"]
    keep = fit_tokenizer([], vocab_size=3, spec=TokenizerSpec(punctuation="keep"))
    assert keep.tokenize("Great!<br/>ok.") == ["great", "!", "ok", "."]


def test_unicode_accents_hangul_emoji():
    keep = fit_tokenizer(["Café crème 😀 정말 재밌다"], vocab_size=20, spec=TokenizerSpec(punctuation="keep"))
    assert keep.tokenize("Café crème 😀 정말 재밌다") == ["café", "crème", "😀", "정말", "재밌다"]
    ids, lengths = keep.encode(["정말 😀", "naïve"])
    assert lengths.tolist() == [2, 1] and ids[0, 1] >= 2 and ids[1, 0] == OOV_ID


def test_one_megabyte_text():
    tok = fitted(max_len=500)
    big = "the cat sat " * 90_000  # ~1 MB
    ids, lengths = tok.encode([big, "dog"])
    assert ids.shape == (2, 500) and lengths.tolist() == [500, 1]


def test_json_round_trip(tmp_path):
    tok = fitted(max_len=7, truncation="post", punctuation="keep")
    path = tmp_path / "tok.json"
    tok.save(path)
    again = Tokenizer.load(path)
    assert again.spec == tok.spec and again.vocab == tok.vocab
    texts = ["the cat sat on the zebra!", "", "ünïcode 😀"]
    for a, b in zip(tok.encode(texts), again.encode(texts)):
        np.testing.assert_array_equal(a, b)
    assert json.loads(path.read_text())["format"] == "attn-tokenizer/1"


def test_load_errors_name_the_file(tmp_path):
    with pytest.raises(TokenizerError, match="missing.json: tokenizer file not found"):
        Tokenizer.load(tmp_path / "missing.json")
    bad = tmp_path / "bad.json"
    bad.write_text("{not json")
    with pytest.raises(ValueError, match="bad.json"):
        Tokenizer.load(bad)
    wrong = tmp_path / "wrong.json"
    wrong.write_text(json.dumps({"format": "attn-tokenizer/1", "spec": {"max_len": 5, "colour": 1}, "vocab": []}))
    with pytest.raises(ValueError, match="colour"):
        Tokenizer.load(wrong)
    # a spec option written beside "spec" (as a one-line edit of a tokenizer JSON easily does) is refused,
    # not ignored: ignoring it gave a tokenizer without the option
    stray = tmp_path / "stray.json"
    stray.write_text(json.dumps({"format": "attn-tokenizer/1", "spec": {"max_len": 5}, "vocab": [],
                                 "negation_as_not": True}))
    with pytest.raises(TokenizerError, match=r"stray.json: tokenizer has unknown field\(s\) \['negation_as_not'\] "
                                             r"\(negation_as_not belong\(s\) in \"spec\"\)"):
        Tokenizer.load(stray)


def test_non_string_input_is_refused():
    with pytest.raises(TypeError, match="str"):
        fitted().encode([None])


# === sentencepiece mode (Korean) ===
@pytest.fixture(scope="module")
def korean():
    from conftest import DATASETS
    from trainer.data import read_table

    data = read_table(DATASETS / "nsmc" / "ratings_train.tsv.gz", text_column="document")
    return fit_tokenizer(data.texts[:5000], 2000, TokenizerSpec(mode="sentencepiece", max_len=40))


def test_sentencepiece_korean_round_trip_and_identical_ids(korean, tmp_path):
    texts = ["정말 재밌다 최고의 영화", "아 더빙.. 진짜 짜증나네요 목소리", "", "Great movie 😀 정말!! ㅋㅋㅋ"]
    ids, lengths = korean.encode(texts)
    assert lengths[2] == 0 and all(lengths[[0, 1, 3]] > 0)
    assert "".join(korean.decode(ids[0])).replace("\u2581", " ").strip() == "정말 재밌다 최고의 영화"
    path = tmp_path / "ko.json"
    korean.save(path)
    assert "sentencepiece_model" in json.loads(path.read_text())  # base64 in JSON, no pickle
    again = Tokenizer.load(path)
    for a, b in zip(ids, again.encode(texts)[0]):
        np.testing.assert_array_equal(a, b)
    assert again.vocab == korean.vocab and korean.vocab_size == 2000


def test_sentencepiece_tokens_are_readable_korean(korean):
    tokens = [Tokenizer.readable(t) for t in korean.tokenize("정말 재밌다")]
    assert "".join(tokens) == "정말재밌다" and all(tokens)


def test_sentencepiece_training_is_deterministic(korean):
    from conftest import DATASETS
    from trainer.data import read_table

    data = read_table(DATASETS / "nsmc" / "ratings_train.tsv.gz", text_column="document")
    again = fit_tokenizer(data.texts[:5000], 2000, TokenizerSpec(mode="sentencepiece", max_len=40))
    assert again.to_dict() == korean.to_dict()


def test_sentencepiece_vocab_too_small_is_a_clear_error():
    with pytest.raises(ValueError, match="sentencepiece training failed: Vocabulary size is smaller"):
        fit_tokenizer(["가나다라마바사아자차카타파하 " * 3, "abcdefghijklmnop"], 10,
                      TokenizerSpec(mode="sentencepiece"))


def test_join_clitics_gives_treebank_and_raw_text_the_same_tokens():
    # SST-2 is lower-cased and treebank-tokenized; users type raw text: one spec field makes them meet
    joined = Tokenizer(TokenizerSpec(join_clitics=True), [])
    pairs = [("it does n't work , and it 's not -lrb- really -rrb- fun", "It doesn't work, and it's not (really) fun"),
             ("i ca n't say i 'm sure they 've got it , wo n't you ?",
              "I can't say I'm sure they've got it, won't you?"),
             ("she 'd say we 'll see what you 're doing", "She’d say we’ll see what you’re doing")]
    for treebank, raw in pairs:
        assert joined.tokenize(treebank) == joined.tokenize(raw)
    assert joined.tokenize("does n't") == ["doesn't"]
    assert joined.tokenize("the '70s and rock 'n' roll") == ["the", "70s", "and", "rock", "n", "roll"]
    plain = Tokenizer(TokenizerSpec(), [])  # off by default: older bundles keep their tokens
    assert plain.tokenize("does n't") == ["does", "n't"]
    keep = Tokenizer(TokenizerSpec(join_clitics=True, punctuation="keep"), [])
    assert (keep.tokenize("great -lrb- really -rrb- !") == keep.tokenize("great (really)!")
            == ["great", "(", "really", ")", "!"])
    spec = TokenizerSpec(join_clitics=True)
    # travels in the JSON
    assert Tokenizer.from_dict(json.loads(json.dumps(Tokenizer(spec, ["a"]).to_dict()))).spec == spec


def test_join_clitics_brackets_match_ascii_case_only():
    """'-lſb-' (long s) case-folds to '-lsb-' under Unicode rules; it used to crash the table lookup."""
    tokenizer = Tokenizer(TokenizerSpec(join_clitics=True, punctuation="keep"), [])
    assert tokenizer.normalize("-LRB- a -Rrb-") == tokenizer.normalize("( a )")
    assert "ſ" in tokenizer.normalize("-lſb- x")


def test_split_negation_makes_nt_one_shared_token_for_raw_and_treebank_text():
    # SST-2's "does n't", raw "doesn't" and curly "doesn’t" are the same tokens, with join_clitics or without
    texts = ["it doesn't work", "it does n't work", "she isn’t here", "i ca n't say", "we won't go", "they didn't"]
    for join in (False, True):
        tokenizer = fit_tokenizer(texts, vocab_size=50, spec=TokenizerSpec(split_negation=True, join_clitics=join))
        assert "n't" in tokenizer.vocab  # one vocabulary token for every negated verb
        assert not any(token.endswith("n't") and token != "n't" for token in tokenizer.vocab), tokenizer.vocab
        ids, lengths = tokenizer.encode(["It doesn't work", "it does n't work", "It doesn’t work", "It DOESN’T work"])
        assert (ids == ids[0]).all() and lengths.tolist() == [4] * 4
        assert tokenizer.decode(ids[0]) == ["it", "does", "n't", "work"]
        assert tokenizer.tokenize("can't won't isn’t ain't") == ["ca", "n't", "wo", "n't", "is", "n't", "ai", "n't"]
        assert tokenizer.tokenize("ca n't wo n't is n’t") == tokenizer.tokenize("can't won't isn't")
        assert tokenizer.tokenize("shouldn't've") == tokenizer.tokenize("should n't 've") == ["should", "n't", "ve"]
        # no other word moves
        assert tokenizer.tokenize("don'tcha it's rock'n'roll") == ["don'tcha", "it's", "rock'n'roll"]
        spec = tokenizer.spec
        assert Tokenizer.from_dict(json.loads(json.dumps(tokenizer.to_dict()))).spec == spec  # travels in the JSON
    keep = Tokenizer(TokenizerSpec(split_negation=True, punctuation="keep", lowercase=False), [])
    assert keep.tokenize("It DOESN'T!") == ["It", "DOES", "N'T", "!"]  # case kept when lowercase is off
    assert keep.tokenize("(isn’t) !n’t") == ["(", "is", "n't", ")", "!", "n", "’", "t"]  # only after a word or space


def test_negation_as_not_looks_n_t_up_as_not_and_fits_no_slot_for_it():
    texts = ["it doesn't work", "it does not work", "not bad", "i can't say"]
    tokenizer = fit_tokenizer(texts, vocab_size=50, spec=TokenizerSpec(split_negation=True, negation_as_not=True))
    assert "n't" not in tokenizer.vocab and tokenizer.vocab[0] == "not"  # counted as "not": 2 + 2 uses
    assert tokenizer.tokenize("It doesn't work") == ["it", "does", "n't", "work"]  # shown as written
    ids, _ = tokenizer.encode(["It doesn't work", "it does not work", "It DOESN’T work"])
    assert (ids == ids[1]).all() and tokenizer.id_of("n't") == tokenizer.id_of("not") == 2
    assert tokenizer.lookup()["n't"] == 2 and len(tokenizer.lookup()) == len(tokenizer.vocab) + 1
    # a vocabulary fitted without it (its "n't" slot is then never used) and one without "not" (OOV)
    old = Tokenizer(TokenizerSpec(split_negation=True, negation_as_not=True), ["n't", "not"])
    assert old.encode(["didn't"])[0].tolist() == [[1, 3]]
    assert Tokenizer(TokenizerSpec(split_negation=True, negation_as_not=True), ["did"]).id_of("n't") == 1
    assert Tokenizer.from_dict(json.loads(json.dumps(tokenizer.to_dict()))).spec == tokenizer.spec
    unnegated = fit_tokenizer(["a fine film"], vocab_size=50, spec=tokenizer.spec)
    assert unnegated.vocab == ["a", "film", "fine"]  # no "not" of zero uses where neither spelling occurs
    for spec in ({"negation_as_not": True}, {"negation_as_not": True, "split_negation": True, "mode": "sentencepiece"}):
        with pytest.raises(TokenizerError, match="negation_as_not needs split_negation"):
            TokenizerSpec(**spec)


def test_specs_without_split_negation_load_and_encode_as_before():
    # a tokenizer JSON as bundles wrote it before the field existed (the shipped IMDB bundle's spec)
    spec = {"max_len": 500, "mode": "word", "lowercase": True, "html_breaks": True, "punctuation": "strip",
            "truncation": "pre", "pad_id": 0, "oov_id": 1}
    old = Tokenizer.from_dict({"format": "attn-tokenizer/1", "spec": spec,
                               "vocab": ["it", "doesn't", "work", "does", "n't"]})
    assert old.spec.split_negation is False and old.spec == TokenizerSpec(**spec)
    assert old.tokenize("It doesn't work, it isn’t good") == ["it", "doesn't", "work", "it", "isn", "t", "good"]
    assert old.encode(["It doesn't work", "it does n't"])[0].tolist() == [[2, 3, 4], [2, 5, 6]]
    joined = Tokenizer.from_dict({"format": "attn-tokenizer/1",
                                  "spec": spec | {"join_clitics": True}, "vocab": ["doesn't"]})
    assert joined.tokenize("does n't") == ["doesn't"]  # join_clitics alone still joins
