"""Attention-guided copy: numbers and words the model cannot read come through unchanged.

Like OpenNMT's `replace_unk` and CTranslate2's `replace_unknowns`, after decoding: the decoder's
attention says which source tokens each target word was read from. Copy spans in the source:

- `number`: a digit run with inner `.`, `,` or `:` groups (`2015`, `70.000`, `12:45`);
- `oov`: a word holding a token outside the source vocabulary (the model cannot read it);
- `name`: a capitalised word, not the first of its sentence, that the tokenizer cuts into 3 or more
  pieces (a name the model has hardly seen: `Barcelona`, `Noruega`).

A number is written over the target word that holds digits, or the English number word of the same
value (`ten` for `10`), that attends to it most; an `oov` span over an unknown target token (`⁇`)
that attends to it most; a `name` over the target word that attends to it most among those whose
most attended source token lies in the name and that are capitalised or spelt in 2 or more pieces
(or are unknown target tokens). A word holding digits is never overwritten by a word. A span already
in the translation is left alone. A number no target word can carry is reported as `missing`, never
invented into the text.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import numpy as np

from runtime.tokenizer import OOV_ID, WORD_START, group_pieces

NUMBER = re.compile(r"\d+(?:[.,:]\d+)*")
_CORE = re.compile(r"[^\W_](?:[\w'’-]*[^\W_])?")  # a word without its punctuation
_NUMBER_WORDS = {word: value for value, word in enumerate(
    "zero one two three four five six seven eight nine ten eleven twelve thirteen fourteen fifteen sixteen seventeen "
    "eighteen nineteen twenty".split())}
_NUMBER_WORDS.update({"thirty": 30, "forty": 40, "fifty": 50, "sixty": 60, "seventy": 70, "eighty": 80, "ninety": 90,
                      "hundred": 100, "thousand": 1000})
_UNKNOWN_TARGET = ("⁇", "<oov>")  # how SentencePiece / a word vocabulary write an unknown target token
_SENTENCE_END = (".", "!", "?", "…")
NAME_PIECES = 3


@dataclass
class Span:
    text: str
    kind: str  # "number", "oov" or "name"
    tokens: list[int]  # positions of the source tokens it covers


def token_offsets(text: str, tokens: list[str]) -> list[int]:
    """Each token's start in `text` (found left to right; a lone word-start mark, or a token not
    found, starts at the cursor and moves nothing)."""
    offsets, cursor = [], 0
    for token in tokens:
        surface = token.replace(WORD_START, " ").strip()
        found = text.find(surface, cursor) if surface else -1
        offsets.append(found if found >= 0 else cursor)
        if found >= 0:
            cursor = found + len(surface)
    return offsets


def source_spans(text: str, tokens: list[str], ids: list[int]) -> list[Span]:
    """The copy spans of one source (`text` as the tokenizer normalised it; its tokens and ids)."""
    offsets = np.asarray(token_offsets(text, tokens))
    spans = []
    for match in NUMBER.finditer(text):
        covered = np.flatnonzero((offsets >= match.start()) & (offsets < match.end())).tolist()
        spans.append(Span(match.group(), "number", covered or _token_at(offsets, match.start())))
    in_numbers = {i for span in spans for i in span.tokens}
    previous = None
    for match in re.finditer(r"\S+", text):
        covered = np.flatnonzero((offsets >= match.start()) & (offsets < match.end())).tolist()
        core = _CORE.search(match.group())
        word = core.group() if core else match.group()
        if any(ids[i] == OOV_ID and i not in in_numbers for i in covered if i < len(ids)):
            spans.append(Span(word, "oov", covered))
        elif (core and previous is not None and not previous.endswith(_SENTENCE_END) and word[0].isupper()
              and not NUMBER.search(word) and len(covered) >= NAME_PIECES):
            spans.append(Span(word, "name", covered))
        previous = match.group()
    return spans


def _token_at(offsets: np.ndarray, start: int) -> list[int]:
    before = np.flatnonzero(offsets <= start)
    return [int(before[-1])] if before.size else []


def target_words(tokens: list[str], sentencepiece: bool) -> list[list[int]]:
    """Target token positions grouped into words (a SentencePiece word starts at a word-start piece;
    `runtime.tokenizer.group_pieces`, which heatmaps and explanations use too)."""
    return group_pieces(tokens) if sentencepiece else [[position] for position in range(len(tokens))]


def _number_value(word: str) -> int | None:
    core = _CORE.search(word)
    return _NUMBER_WORDS.get(core.group().lower()) if core else None


def _already_there(span: Span, words: list[str]) -> bool:
    if span.kind == "number":
        return any(span.text in NUMBER.findall(word) for word in words)
    return any(span.text in word for word in words)


def _carries(span: Span, word: str, pieces: int, best_source: int) -> bool:
    """Whether target `word` (of `pieces` tokens; its most attended source token is `best_source`)
    may carry `span`."""
    if span.kind == "number":
        if NUMBER.search(word):
            return True
        value = _number_value(word)
        return value is not None and span.text.isdigit() and value == int(span.text)
    if NUMBER.search(word):  # a number is never overwritten by a word
        return False
    if any(mark in word for mark in _UNKNOWN_TARGET):
        return True
    # a word the model reads despite an unknown character ("Hier" in fra-eng) keeps its translation;
    # a name comes out capitalised, or spelt piece by piece when the model does not know it ("st" "ea")
    return span.kind == "name" and best_source in span.tokens and (word[:1].isupper() or pieces >= 2)


def _rewrite(word: str, span: Span) -> str:
    pattern = NUMBER if span.kind == "number" and NUMBER.search(word) else _CORE
    if any(mark in word for mark in _UNKNOWN_TARGET) and span.kind != "number":
        pattern = re.compile("|".join(map(re.escape, _UNKNOWN_TARGET)))
    return pattern.sub(lambda _: span.text, word, count=1)


def copy_spans(words: list[str], pieces: list[int], attention: np.ndarray,
               spans: list[Span]) -> tuple[list[str], list[dict], list[str]]:
    """(the target words with spans copied in, what was copied [{"source", "replaced", "kind"}], the
    number/oov spans no word could carry). `pieces`: each word's token count; `attention` (target
    words, source tokens): each word's attention summed over its tokens."""
    words = list(words)
    best_source = attention.argmax(-1) if attention.size else np.zeros(len(words), dtype=int)
    candidates = []
    for s, span in enumerate(spans):
        if _already_there(span, words) or not span.tokens:
            continue
        for w, word in enumerate(words):
            if _carries(span, word, pieces[w], int(best_source[w])):
                candidates.append((float(attention[w, span.tokens].sum()), w, s))
    used_words, placed, copied = set(), set(), []
    for _, w, s in sorted(candidates, reverse=True):
        if w in used_words or s in placed:
            continue
        used_words.add(w)
        placed.add(s)
        copied.append({"source": spans[s].text, "replaced": words[w], "kind": spans[s].kind})
        words[w] = _rewrite(words[w], spans[s])
    missing = [span.text for s, span in enumerate(spans) if s not in placed and span.kind == "number"
               and not _already_there(span, words)]
    return words, copied, missing


# === Copy while decoding: numbers the model would drop or change ===
FORCE_DIGIT_PROBABILITY = 0.2  # the model's probability of some digit token that starts a copy
FORCE_ATTENTION = 0.5  # or: the attention on a number not yet written, with a digit token at least this likely
FORCE_ATTENDED_DIGIT_PROBABILITY = 0.02


def digit_tokens(vocab: list[str]) -> np.ndarray:
    """(V,) bool: target tokens that write a digit (a piece holding one, or a byte-fallback digit <0x3N>)."""
    marks = np.zeros(len(vocab) + 2, dtype=bool)  # ids 0 and 1: padding and OOV
    for i, token in enumerate(vocab, 2):
        marks[i] = bool(re.search(r"\d", token)) and not re.fullmatch(r"<0x(?![3][0-9]>)[0-9A-F]{2}>", token)
    return marks


def word_continuing_tokens(vocab: list[str]) -> np.ndarray:
    """(V,) bool: target pieces that glue letters or digits onto the word before (no word-start mark,
    first character alphanumeric: "th" in "30" "th"); byte-fallback and punctuation pieces are not."""
    marks = np.zeros(len(vocab) + 2, dtype=bool)
    for i, token in enumerate(vocab, 2):
        marks[i] = bool(token) and not token.startswith(WORD_START) and token[0].isalnum()
    return marks


def number_word_values(vocab: list[str]) -> np.ndarray:
    """(V,) int: the value of target pieces that are a whole English number word ("▁two", "two": 2), else -1."""
    values = np.full(len(vocab) + 2, -1, dtype=np.int64)
    for i, token in enumerate(vocab, 2):
        values[i] = _NUMBER_WORDS.get(token.removeprefix(WORD_START).lower(), -1)
    return values


class NumberCopier:
    """A search step (runtime.models.search) that writes the source's numbers token for token: when the
    model is about to write a digit, or attends to a number it has not written and a digit is
    plausible, the next tokens are that number's target tokens (each scored as the model's best
    token at that step). Each number is written once per hypothesis, and ends its word: the step after
    it may not glue a letter or digit piece onto it (`continuing`; "at 14 30th" was the model's suffix
    on a forced "30"). A number the model writes as a word ("two" for "2", `values`) counts as written.
    Outside a forced number no digit may be written: a beam cannot invent one. The state carries, per
    hypothesis, the number being written, how far, which are done, and whether one just ended."""

    def __init__(self, step, numbers: list[list[tuple[list[int], list[int], list[int]]]], digits: np.ndarray,
                 word_start: int, prefixes: list | None = None, continuing: np.ndarray | None = None,
                 values: np.ndarray | None = None):
        # numbers[sentence] = [(source positions, target ids, target ids after a lone word start, text), ...];
        # prefixes[sentence] = (target ids forced from the first step, the number they end with) or None
        self.step, self.digits, self.word_start = step, digits, word_start
        self.continuing = np.zeros_like(digits) if continuing is None else continuing
        self.values = np.full(len(digits), -1) if values is None else values
        self.texts = [[number[3] if len(number) > 3 else None for number in sentence] for sentence in numbers]
        self.prefixes, self.steps = prefixes or [None] * len(numbers), 0
        self.most = max(1, max(map(len, numbers), default=1))
        self.sources = [[number[0] for number in sentence] for sentence in numbers]
        self.targets = [[(number[1], number[2]) for number in sentence] for sentence in numbers]
        self.has_numbers = np.array([bool(sentence) for sentence in numbers])

    def initial(self, state: tuple, batch: int) -> tuple:
        return (*state, np.full(batch, -1), np.zeros(batch, dtype=np.int64), np.zeros(batch, dtype=bool),
                np.zeros((batch, self.most), dtype=bool), np.zeros(batch, dtype=bool))

    def __call__(self, previous, sentence, state):
        *model_state, number, position, after_space, done, ended = state
        log_probs, model_state, weights = self.step(previous, sentence, tuple(model_state))
        log_probs, number, position, done = log_probs.copy(), number.copy(), position.copy(), done.copy()
        after_space, ended = after_space.copy(), ended.copy()
        probabilities = np.exp(log_probs)
        self.steps += 1
        for row in np.flatnonzero(self.has_numbers[sentence]):
            b = int(sentence[row])
            prefix = self.prefixes[b]
            if prefix is not None and self.steps <= len(prefix[0]):
                forced = prefix[0][self.steps - 1]
                log_probs[row] = np.where(np.arange(log_probs.shape[1]) == forced, log_probs[row].max(), -np.inf)
                done[row, prefix[1]] |= self.steps == len(prefix[0])
                ended[row] = self.steps == len(prefix[0])  # the prefix ends with its number
                continue
            value = int(self.values[previous[row]]) if previous[row] < len(self.values) else -1
            if value >= 0 and number[row] < 0:  # the model wrote a number as a word: that number is written
                for s, text in enumerate(self.texts[b]):
                    if not done[row, s] and text == str(value):
                        done[row, s] = True
                        break
            if ended[row]:  # a number was just written: what follows starts a new word or is punctuation
                log_probs[row, self.continuing[: log_probs.shape[1]]] = -np.inf
                ended[row] = False
            if number[row] < 0:
                number[row] = self.start(b, probabilities[row], None if weights is None else weights[row], done[row])
                position[row] = 0
                after_space[row] = previous[row] == self.word_start
            if number[row] < 0:  # digits come from the source's numbers only: a beam may not invent one
                log_probs[row, self.digits[: log_probs.shape[1]]] = -np.inf
            if number[row] >= 0:
                ids = self.targets[b][number[row]][int(after_space[row])]
                forced = ids[position[row]]
                best = log_probs[row].max()
                log_probs[row] = -np.inf
                log_probs[row, forced] = best
                position[row] += 1
                if position[row] == len(ids):
                    done[row, number[row]] = True
                    number[row] = -1
                    ended[row] = True
        return log_probs, (*model_state, number, position, after_space, done, ended), weights

    def start(self, b: int, probabilities: np.ndarray, weights, done: np.ndarray) -> int:
        """The number to write now in sentence b's hypothesis, or -1."""
        open_numbers = [s for s in range(len(self.sources[b])) if not done[s] and self.sources[b][s]]
        if not open_numbers or weights is None:  # (weights: None only for a graph without attention)
            return -1
        attention = [float(weights[self.sources[b][s]].sum()) for s in open_numbers]
        best = open_numbers[int(np.argmax(attention))]
        digit = float(probabilities[self.digits[: len(probabilities)]].sum())
        if digit >= FORCE_DIGIT_PROBABILITY or self.digits[int(probabilities.argmax())]:
            return best
        if max(attention) >= FORCE_ATTENTION and digit >= FORCE_ATTENDED_DIGIT_PROBABILITY:
            return best
        return -1
