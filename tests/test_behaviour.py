"""The behavioural suite (bench/behaviour.py): its expansion, and the shipped default kept above floors."""

import re

import pytest
from click.testing import CliRunner

import runtime
from bench.__main__ import main as bench_cli
from bench.behaviour import TESTS, BehaviourTest, evaluate, expand, fill

# The shipped default (issue 36, 2026-12-04: one network distilled from five for six epochs with one word-drop
# copy of each training row, tokenizer reading "n't" as "not") measured 85.7 % overall; the default before it
# 83.8 %, the one before that 85.8 %, the 2026-12-02 one 76.8 %, the IMDB + SST-2 + CAD one 74.9 %, the distilled
# IMDB + SST-2 default 70.0 %, the IMDB-only default 51.2 %. Floors sit 3-5 points below each measured rate so
# that a retrain which loses vocabulary, negation, contrast or invariance fails here. This model raised
# "negation of negatives: contractions" (25.8 -> 40.8 %), "contractions and intensifiers" (68.1 -> 76.9 %) and
# names (95.0 -> 98.8 %), so those floors went up again (0.22 -> 0.36, 0.64 -> 0.72, 0.91 -> 0.94) and the
# overall one (0.80 -> 0.82); "negated negative" fell (72.0 -> 66.0 %), its floor 0.66 -> 0.62, as the card says.
FLOORS = {
    "vocabulary: positive words": 0.94,
    "vocabulary: negative words": 0.95,
    "negated positive": 0.95,
    "negated negative": 0.62,
    "negation: contractions and intensifiers": 0.72,
    "negation of negatives: contractions": 0.36,
    "contrast: ..., but ...": 0.87,
    "invariance: names": 0.94,
    "invariance: punctuation": 0.95,
    "invariance: casing": 0.95,
    "overall": 0.82,
}


@pytest.fixture(scope="module")
def default_results():
    return evaluate(runtime.load())


def test_expansion_is_deterministic_complete_and_labelled():
    cases = expand()
    assert cases == expand() and cases != expand(seed=1)
    assert {case.test for case in cases} == {test.name for test in TESTS}
    for test in TESTS:
        mine = [case for case in cases if case.test == test.name]
        assert len(mine) == test.cap and len({case.text for case in mine}) == test.cap  # no duplicates
    assert 1200 <= len(cases) <= 1400
    for case in cases:
        assert "{" not in case.text and not re.search(r"\b[Aa] [aeiou]", case.text)
        if case.test.startswith("invariance"):
            assert case.expected is None and case.variant and case.variant != case.text
        else:
            assert case.expected in (0, 1) and case.variant is None
    # the clause after "but" decides a contrast case
    contrast = [case for case in cases if case.test.startswith("contrast")]
    assert {case.expected for case in contrast} == {0, 1}
    for case in contrast:
        after = case.text.split(", but ")[1]
        assert case.expected == (not re.search(r"hated|disliked|despised|regretted|\b(bad|terrible|awful|boring|"
                                               r"dull|horrible|poor|disappointing|stupid|weak|dreadful|annoying|"
                                               r"pathetic|lame|tedious|bland)\b", after))
    assert all(case.expected == 0 for case in cases if case.test == "negated positive")


def test_fill_expands_every_slot_combination():
    assert fill("{Pos}!")[:2] == ["Good!", "Great!"]
    assert len(fill("The {noun} was not {pos}.")) == 12 * 16
    assert "It is not bad, not bad at all." not in fill("It is not {negatable}, not {negatable2} at all.")  # differ
    assert ("What an awful movie!" in fill("What a {neg} {noun}!")
            and "What a awful movie!" not in fill("What a {neg} {noun}!"))
    small = BehaviourTest("t", "vocabulary", ("I {pv} it.",), 1, 3, "")
    assert ([case.text for case in expand([small])] == [case.text for case in expand([small])]
            and len(expand([small])) == 3)


def test_shipped_default_stays_above_its_behaviour_floors(default_results):
    rates = {name: result.rate for name, result in default_results.items()}
    below = {name: f"{100 * rates[name]:.1f} % < {100 * floor:.0f} %"
             for name, floor in FLOORS.items() if rates[name] < floor}
    assert not below, f"behavioural suite regressed: {below}"
    assert default_results["overall"].cases == len(expand())


def card_behaviour(card) -> dict[str, float]:
    """A model card's behavioural table (header "| test type | cases | ..."): test type -> the rate in
    its column "this model" (else its last column)."""
    lines = card.read_text(encoding="utf-8").splitlines()
    start = next((i for i, line in enumerate(lines) if line.startswith("| test type | cases |")), None)
    assert start is not None, f"{card}: no behavioural table ('| test type | cases | ...')"
    header = [cell.strip() for cell in lines[start].strip("|").split("|")]
    column = header.index("this model") if "this model" in header else len(header) - 1
    rates = {}
    for line in lines[start + 2 :]:
        if not line.startswith("|"):
            break
        cells = [cell.strip().strip("*") for cell in line.strip("|").split("|")]
        rates[cells[0]] = float(cells[column].rstrip(" %")) / 100
    return rates


def test_shipped_default_keeps_the_behaviour_its_card_records(default_results):
    """Issue 19 item 4 with a floor computed, not typed in: the default bundle's MODEL_CARD.md records its
    behavioural table, and every measured rate (overall included) must be within 3 points of it. Shipping
    a better default with its card raises the floor; a retrain that loses negation without saying so in
    its card fails here (and FLOORS above stay the absolute minimum)."""
    card = runtime.load().bundle.path / "MODEL_CARD.md"
    recorded = card_behaviour(card)
    assert set(recorded) == set(default_results), (
        f"{card}: the behavioural table lacks {set(default_results) - set(recorded)}")
    off = {name: f"measured {100 * result.rate:.1f} %, card {100 * recorded[name]:.1f} %"
           for name, result in default_results.items() if abs(result.rate - recorded[name]) > 0.03}
    assert not off, f"the shipped default's behaviour is not what its card records (floor: card - 3 points): {off}"


def test_bench_behaviour_prints_rates_per_type_side_by_side(tmp_path):
    out = tmp_path / "rates.json"
    result = CliRunner().invoke(bench_cli, ["behaviour", "--model", "imdb", "--model", "imdb-int8", "--failures", "1",
                                            "--json-out", str(out)])
    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    assert "| test type | cases | imdb | imdb-int8 |" in lines
    for test in TESTS:
        assert any(line.startswith(f"| {test.name} | {test.cap} | ") for line in lines)
    assert any(line.startswith("FAIL [negated negative]") for line in lines)
    import json

    figures = json.loads(out.read_text())
    assert set(figures) == {"imdb", "imdb-int8"} and figures["imdb"]["overall"]["cases"] == len(expand())
    missing = CliRunner().invoke(bench_cli, ["behaviour", "--model", str(tmp_path / "nothing")])
    assert missing.exit_code != 0 and "Traceback" not in missing.output


def test_bench_refuses_a_bundle_in_another_language():
    """The suite is English: on the Korean bundle its figure would mean nothing, so it is refused in one line."""
    result = CliRunner().invoke(bench_cli, ["behaviour", "--model", "nsmc"])
    assert result.exit_code != 0 and "the behavioural suite is English" in result.output and "ko" in result.output
