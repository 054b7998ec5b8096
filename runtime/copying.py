"""Attention-guided copy: numbers and words the model cannot read come through unchanged.

Like OpenNMT's `replace_unk` and CTranslate2's `replace_unknowns`, after decoding: the decoder's
attention says which source tokens each target word was read from. Copy spans in the source:

- `number`: a digit run with inner `.`, `,` or `:` groups (`2015`, `70.000`, `12:45`);
- `oov`: a word holding a token outside the source vocabulary (the model cannot read it);
- `name`: a capitalised word, not the first of its sentence, that the tokenizer cuts into 3 or more
  pieces (a name the model has hardly seen: `Barcelona`, `Noruega`).

A number is written over the target word that holds digits, or the English number word of the same
value (`ten` for `10`), that attends to it most; an `oov` or `name` span over the target word that
attends to it most among those whose most attended source token lies in the span (or that is an
unknown target token). A span already in the translation is left alone. A number or `oov` span that
no target word can carry is reported as `missing`, never invented into the text.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import numpy as np

from runtime.tokenizer import OOV_ID, WORD_START

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
    """Target token positions grouped into words (a SentencePiece word starts at a word-start piece)."""
    words: list[list[int]] = []
    for position, token in enumerate(tokens):
        if not words or not sentencepiece or token.startswith(WORD_START):
            words.append([position])
        else:
            words[-1].append(position)
    return words


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
    # a name comes out capitalised, or spelt piece by piece when the model does not know it ("st" "ea")
    return best_source in span.tokens and (span.kind == "oov" or word[:1].isupper() or pieces >= 2)


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
    missing = [span.text for s, span in enumerate(spans) if s not in placed and span.kind != "name"
               and not _already_there(span, words)]
    return words, copied, missing
