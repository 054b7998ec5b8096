"""Long sources: sentences, then windows, so that nothing beyond the model's limit is cut.

The translator reads at most `max_len` source tokens. A source that fits is translated whole, as
the model was trained. A longer one is split by `split_sentences`:

- a sentence ends after `.`, `!`, `?` or `…` (a run of them, then any closing quotes or brackets)
  followed by white space and then an upper-case letter, a digit or an opening mark (`¿ ¡ " « (`);
- except after an abbreviation: a single letter (`J. Smith`) or one of `ABBREVIATIONS` (`Sr.`,
  `Dr.`, `Mme.`, ...).

A sentence still longer than `max_len` tokens is cut into windows of whole words, each at most
`max_len` tokens, ending after a `,`, `;` or `:` where one lies in the window's second half, else
at the last word that fits (a single word longer than the limit is cut between characters). Each
piece is translated on its own and the translations are joined by a space; the row says so
(`Translation.segments`, `Translation.windowed`).
"""

from __future__ import annotations

import re
from typing import Callable

ABBREVIATIONS = frozenset(("sr sra srta srs sres dr dra dres ud uds vd vds etc pág núm art av avda mr mrs ms st mt "
                           "mme mlle mm p ej vol cap nº fig prof profa ing lic").split())
_END = re.compile(r"[.!?…]+[\"'»”’)\]]*\s+")
_OPENING = "¿¡\"'«“‘(["
_CLAUSE_END = (",", ";", ":")


def split_sentences(text: str) -> list[str]:
    """`text` as sentences (see the module's rule); their concatenation with single spaces is the
    text with runs of white space at the cuts collapsed."""
    sentences, start = [], 0
    for match in _END.finditer(text):
        following = text[match.end() : match.end() + 1]
        if not following or not (following.isupper() or following.isdigit() or following in _OPENING):
            continue
        words = text[start : match.start() + 1].split()
        last = words[-1].rstrip(".!?…").lstrip(_OPENING).lower() if words else ""
        if text[match.start()] == "." and ((len(last) == 1 and last.isalpha()) or last in ABBREVIATIONS):
            continue
        sentences.append(text[start : match.end()].strip())
        start = match.end()
    sentences.append(text[start:].strip())
    return [sentence for sentence in sentences if sentence]


def windows(sentence: str, limit: int, count: Callable[[str], int]) -> list[str]:
    """`sentence` as runs of whole words of at most `limit` tokens each (`count(text)` = its tokens)."""
    pieces, current, used = [], [], 0
    for word in _fitting_words(sentence.split(), limit, count):
        size = count(word)
        if current and used + size > limit:
            cut = _clause_cut(current)
            pieces.append(" ".join(current[:cut]))
            current = current[cut:]
            used = sum(map(count, current))
        current.append(word)
        used += size
    if current:
        pieces.append(" ".join(current))
    return pieces


def _clause_cut(words: list[str]) -> int:
    """Where to end a full window: after its last clause mark in the second half, else after all of it."""
    for index in range(len(words) - 1, len(words) // 2 - 1, -1):
        if words[index].endswith(_CLAUSE_END):
            return index + 1
    return len(words)


def _fitting_words(words: list[str], limit: int, count: Callable[[str], int]) -> list[str]:
    """The words, any of more than `limit` tokens cut between characters into parts that fit."""
    out = []
    for word in words:
        while count(word) > limit and len(word) > 1:
            cut = len(word) // 2
            while cut > 1 and count(word[:cut]) > limit:
                cut //= 2
            out.append(word[:cut])
            word = word[cut:]
        out.append(word)
    return out


def segments(text: str, limit: int, count: Callable[[str], int]) -> tuple[list[str], bool]:
    """(the parts to translate, whether any sentence needed windows). A text that fits is one part."""
    if count(text) <= limit:
        return [text], False
    parts, windowed = [], False
    for sentence in split_sentences(text):
        if count(sentence) <= limit:
            parts.append(sentence)
        else:
            parts.extend(windows(sentence, limit, count))
            windowed = True
    return parts, windowed
