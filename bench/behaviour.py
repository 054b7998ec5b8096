"""A behavioural test suite for English sentiment models, CheckList-style (Ribeiro et al., ACL 2020).

    python -m bench behaviour --model imdb [--model path/to/other/bundle ...]

Cases are expanded from the templates below (fixed word lists, a full product of the slots, then a
seeded sample down to each test's cap), so the suite is the same on every run and machine. Two kinds
of test:
  expected label   the model must give `expected` (0 negative, 1 positive), e.g. "The movie was not
                   good." -> negative
  invariance       a text and a perturbed copy (another name, punctuation, casing) must get the
                   same label; the pass rate counts pairs whose labels agree
The score is the pass rate per test type and overall (all cases pooled). Any sentiment bundle can be
scored; `tests/test_behaviour.py` keeps the shipped default above a floor.
"""

from __future__ import annotations

import itertools
import random
import re
from dataclasses import dataclass
from typing import Sequence

POSITIVE_ADJ = ["good", "great", "excellent", "wonderful", "amazing", "brilliant", "fantastic", "enjoyable",
                "superb", "delightful", "beautiful", "fun", "impressive", "outstanding", "lovely", "entertaining"]
NEGATIVE_ADJ = ["bad", "terrible", "awful", "boring", "dull", "horrible", "poor", "disappointing", "stupid",
                "weak", "dreadful", "annoying", "pathetic", "lame", "tedious", "bland"]
# negatives whose negation reads as praise ("not bad at all"); "not poor" or "not weak" are too faint to expect it
NEGATABLE_NEGATIVE_ADJ = ["bad", "terrible", "awful", "boring", "dull", "horrible", "disappointing", "dreadful",
                          "tedious", "annoying"]
POSITIVE_VERB = ["love", "enjoy", "like", "admire", "adore", "recommend"]
POSITIVE_VERB_PAST = ["loved", "enjoyed", "liked", "admired", "adored", "appreciated"]
NEGATIVE_VERB = ["hate", "dislike", "despise", "regret"]
NEGATIVE_VERB_PAST = ["hated", "disliked", "despised", "regretted"]
NOUN = ["movie", "film", "acting", "story", "plot", "ending", "cast", "script", "show", "book", "product", "service"]
NAME = ["John", "Mary", "Ahmed", "Mei", "Carlos", "Olga", "Kwame", "Priya", "Lars", "Yuki"]
INTENSIFIER = ["really", "very", "so", "particularly", "that", "at all"]


@dataclass(frozen=True)
class BehaviourTest:
    name: str
    capability: str
    templates: tuple[str, ...]
    expected: int | None  # None: an invariance test (templates give the base texts)
    cap: int
    description: str


# {pos}/{neg}/{negatable}: adjectives; {pv}/{pvd}: positive verb / past; {nv}/{nvd}: negative; {noun}, {noun2};
# {int}: intensifier
TESTS: tuple[BehaviourTest, ...] = (
    BehaviourTest("vocabulary: positive words", "vocabulary", (
        "The {noun} was {pos}.", "What a {pos} {noun}!", "It is a {pos} {noun}.", "I {pv} this {noun}.",
        "I {pvd} the {noun}.", "{Pos}.", "{Pos} {noun}.", "Such a {pos} {noun}.", "The {noun} is really {pos}.",
    ), 1, 150, "a positive word in a plain sentence or fragment"),
    BehaviourTest("vocabulary: negative words", "vocabulary", (
        "The {noun} was {neg}.", "What a {neg} {noun}!", "It is a {neg} {noun}.", "I {nv} this {noun}.",
        "I {nvd} the {noun}.", "{Neg}.", "{Neg} {noun}.", "Such a {neg} {noun}.", "The {noun} is really {neg}.",
    ), 0, 150, "a negative word in a plain sentence or fragment"),
    BehaviourTest("negated positive", "negation", (
        "The {noun} was not {pos}.", "This is not a {pos} {noun}.", "Not {pos}.", "It is not {pos}.",
        "I do not {pv} this {noun}.", "The {noun} is not {pos} at all.", "Not a {pos} {noun}.",
    ), 0, 150, "not + a positive word -> negative"),
    BehaviourTest("negated negative", "negation", (
        "The {noun} was not {negatable}.", "Not {negatable} at all.", "The {noun} was not {negatable} at all.",
        "This is not a {negatable} {noun} at all.", "It is not {negatable}, not {negatable2} at all.",
        "Not {negatable} at all, actually quite {pos}.",
    ), 1, 150, "not + a negative word -> positive (\"not bad at all\")"),
    BehaviourTest("negation: contractions and intensifiers", "negation", (
        "I didn't {pv} the {noun}.", "The {noun} isn't {int} {pos}.", "The {noun} wasn't {int} {pos}.",
        "I can't say I {pvd} the {noun}.", "I would not {pv} this {noun} to anyone.",
        "It's never {pos}.", "I don't think the {noun} is {pos}.", "The {noun} doesn't look {pos}.",
        "I wouldn't call the {noun} {pos}.", "I never {pvd} this {noun}.",
    ), 0, 160, "didn't, isn't, can't, never, don't think ... + a positive word -> negative"),
    BehaviourTest("negation of negatives: contractions", "negation", (
        "I didn't {nv} the {noun} at all.", "The {noun} isn't {negatable} at all.",
        "The {noun} wasn't {negatable} at all.",
        "I don't think the {noun} is {negatable} at all.", "It's never {negatable}.", "I can't say I {nvd} the {noun}.",
    ), 1, 120, "didn't, isn't, never ... + a negative word -> positive"),
    BehaviourTest("contrast: ..., but ...", "contrast", (
        "The {noun} was {neg}, but overall I {pvd} it.", "It started {neg}, but the {noun2} was {pos}.",
        "I expected to {nv} it, but it was {pos}.", "The {noun} is a bit {neg}, but the rest is {pos}.",
        "The {noun} was {pos}, but overall I {nvd} it.", "It started {pos}, but the {noun2} was {neg}.",
        "I expected to {pv} it, but it was {neg}.", "The {noun} is {pos}, but the rest is {neg}.",
    ), None, 160, "the clause after 'but' decides"),
    BehaviourTest("invariance: names", "invariance", (
        "{name} thought the {noun} was {pos}.", "{name} thought the {noun} was {neg}.",
        "{name} said the {noun} was not {pos}.", "According to {name}, the {noun} is {neg}.",
        "{name} {pvd} the {noun}.", "{name} {nvd} the {noun}.",
    ), None, 80, "another person's name does not flip the label"),
    BehaviourTest("invariance: punctuation", "invariance", (
        "The {noun} was {pos}.", "The {noun} was {neg}.", "I {pvd} the {noun}.", "I {nvd} the {noun}.",
        "The {noun} was not {pos}.", "What a {neg} {noun}.",
    ), None, 80, "adding or removing final punctuation does not flip the label"),
    BehaviourTest("invariance: casing", "invariance", (
        "The {noun} was {pos}.", "The {noun} was {neg}.", "I {pvd} the {noun}.", "I {nvd} the {noun}.",
        "The {noun} was not {pos}.", "What a {neg} {noun}!",
    ), None, 80, "upper or lower case does not flip the label"),
)

_SLOTS = {
    "pos": POSITIVE_ADJ, "neg": NEGATIVE_ADJ, "negatable": NEGATABLE_NEGATIVE_ADJ, "negatable2": NEGATABLE_NEGATIVE_ADJ,
    "pv": POSITIVE_VERB, "pvd": POSITIVE_VERB_PAST, "nv": NEGATIVE_VERB, "nvd": NEGATIVE_VERB_PAST,
    "noun": NOUN, "noun2": NOUN, "int": INTENSIFIER, "name": NAME,
}
_SLOT = re.compile(r"\{(\w+)\}")
_ARTICLE = re.compile(r"\b([Aa]) ([aeiou])")


@dataclass(frozen=True)
class Case:
    test: str
    text: str
    expected: int | None = None  # the label a prediction test expects
    variant: str | None = None  # the perturbed copy of an invariance test


def fill(template: str) -> list[str]:
    """Every filling of a template's slots ({Pos} is {pos} capitalised); repeated slots vary together."""
    names = list(dict.fromkeys(match.lower() for match in _SLOT.findall(template)))
    out = []
    for values in itertools.product(*(_SLOTS[name] for name in names)):
        chosen = dict(zip(names, values))
        if chosen.get("negatable") is not None and chosen.get("negatable") == chosen.get("negatable2"):
            continue
        if chosen.get("noun") is not None and chosen.get("noun") == chosen.get("noun2"):
            continue
        text = _SLOT.sub(lambda m: chosen[m.group(1).lower()].capitalize() if m.group(1)[0].isupper()
                         else chosen[m.group(1)], template)
        out.append(_ARTICLE.sub(r"\1n \2", text))  # "a awful" -> "an awful"
    return out


def _contrast_label(text: str) -> int:
    after = text.split(", but ", 1)[1]
    return int(any(re.search(rf"\b{re.escape(word)}\b", after)
                   for word in POSITIVE_ADJ + POSITIVE_VERB_PAST + POSITIVE_VERB))


def _perturb(test: BehaviourTest, text: str, rng: random.Random) -> str:
    if test.name == "invariance: names":
        name = next(n for n in NAME if text.startswith(n) or f" {n}," in text)
        return text.replace(name, rng.choice([n for n in NAME if n != name]), 1)
    if test.name == "invariance: punctuation":
        return text[:-1] if text[-1] in ".!" else text + "!"
    return text.upper() if rng.random() < 0.5 else text.lower()


def expand(tests: Sequence[BehaviourTest] = TESTS, seed: int = 0) -> list[Case]:
    """The suite's cases: each test's templates filled, deduplicated, then a seeded sample of `cap`
    spread evenly over its templates (deterministic)."""
    cases = []
    for test in tests:
        rng = random.Random(f"{seed}:{test.name}")
        per_template = [sorted(set(fill(t))) for t in test.templates]
        for texts in per_template:
            rng.shuffle(texts)
        chosen, seen = [], set()
        for row in itertools.zip_longest(*per_template):  # round robin over templates
            for text in row:
                if text is not None and text not in seen and len(chosen) < test.cap:
                    seen.add(text)
                    chosen.append(text)
        for text in chosen:
            if test.capability == "invariance":
                cases.append(Case(test.name, text, None, _perturb(test, text, rng)))
            elif test.expected is None:
                cases.append(Case(test.name, text, _contrast_label(text)))
            else:
                cases.append(Case(test.name, text, test.expected))
    return cases


@dataclass
class Result:
    test: str
    cases: int
    passed: int
    failures: list[str]

    @property
    def rate(self) -> float:
        return self.passed / self.cases if self.cases else 0.0


def evaluate(classifier, cases: Sequence[Case] | None = None, threshold: float = 0.5) -> dict[str, Result]:
    """Score every case with a runtime Classifier; per test name a Result, plus "overall"."""
    cases = expand() if cases is None else list(cases)
    texts = [case.text for case in cases] + [case.variant for case in cases if case.variant is not None]
    probabilities = classifier.predict(texts)
    label = {text: int(p >= threshold) for text, p in zip(texts, probabilities)}
    score = dict(zip(texts, probabilities))
    results: dict[str, Result] = {}
    for case in cases:
        result = results.setdefault(case.test, Result(case.test, 0, 0, []))
        result.cases += 1
        if case.variant is not None:
            ok = label[case.text] == label[case.variant]
            why = f"{case.text!r} {score[case.text]:.2f} vs {case.variant!r} {score[case.variant]:.2f}"
        else:
            ok = label[case.text] == case.expected
            why = f"{case.text!r} {score[case.text]:.2f} (expected {'positive' if case.expected else 'negative'})"
        result.passed += ok
        if not ok:
            result.failures.append(why)
    results["overall"] = Result("overall", sum(r.cases for r in results.values()),
                                sum(r.passed for r in results.values()), [])
    return results
