"""The conformance corpus that defines the JS tokenizer (web/src/tokenizer.js): texts and the ids the
PYTHON tokenizer gives them. tests/test_web.py writes it (the 25,000 IMDB test reviews + the
hand-written adversarial set below, under several tokenizer specs) and web/test/conformance.mjs
must reproduce every row; nothing is stored in git, the corpus is generated from the Python code.

    python3 tests/web_corpus.py OUT.jsonl     # write the corpus by hand (IMDB test reviews included)

File format (JSON lines): a header {"tokenizers": [tokenizer JSON, ...]}, then one row per text
{"tokenizer": index, "name": where the text came from, "text": ..., "tokens": [...], "ids": [...]}.
"""

from __future__ import annotations

import itertools
import json
import re
import sys
import unicodedata
from dataclasses import replace
from pathlib import Path
from typing import Iterable

from runtime.tokenizer import Tokenizer

# (name, text): what a word regex and str.lower() get wrong most easily across languages/engines
ADVERSARIAL: list[tuple[str, str]] = [
    ("empty", ""),
    ("spaces only", "   \t\n  "),
    ("plain", "A wonderful, moving film."),
    ("accents precomposed", "Café crème brûlée, naïve façade, Ångström, Øre, Straße"),
    ("accents combining", "Cafe\u0301 cre\u0300me bru\u0302le\u0301e nai\u0308ve"),
    ("combining alone", "\u0301\u0301 a\u0301b \u0301word"),
    ("NFC vs NFD",
     unicodedata.normalize("NFD", "Résumé Über Ñandú") + " " + unicodedata.normalize("NFC", "Résumé Über Ñandú")),
    ("hangul", "이 영화 정말 최고예요!! 강추 ㅋㅋㅋ 10점"),
    ("hangul jamo", "\u1100\u1161\u11a8 \u3131\u314f"),
    ("cjk", "这部电影很好看。日本語のテキスト、カタカナ"),
    ("emoji zwj", "Loved it 👨‍👩‍👧‍👦 family film 👍🏽 ❤️ 10/10 🎬🍿"),
    ("emoji flags and keycaps", "🇺🇸🇫🇷 #️⃣ 1️⃣ great"),
    ("rtl", "فيلم رائع جدا שלום עולם \u200fmixed\u200e text"),
    ("arabic digits", "٣ نجوم من ١٠ ۴"),
    ("apostrophes", "don't can't 'quoted' rock'n'roll o'clock '' ' it's' 'tis dogs' l'été"),
    ("typographic quotes", "don’t “quoted” ‘single’ „low“ «guillemets» ‹one›"),
    ("apostrophe edges", "a'b' 'a'b a''b a'''b ''a'' x'y'z'"),
    ("br variants", "one<br />two<br/>three<br>four<BR />five<Br/>six<br  />seven<br\t/>eight<br\n>nine"),
    ("br near misses", "<br / > <brr> <b r> <br//> < br> <br/ > x<br>y<br>"),
    ("br unicode space", "a<br\u00a0/>b<br\u3000>c<br\u2028>d<br\x85>e<br\x1c>f<br\ufeff>g"),
    ("digits", "10/10 7.5 1,000,000 3rd 2nd 1990s 24fps ½ ² ⅷ ① Ⅻ"),
    ("underscores", "snake_case __init__ _ __ a_b_c _x_"),
    ("tabs and newlines", "tab\tseparated\nnew\r\nline\x0bvertical\x0cform"),
    ("unicode spaces", "a\u00a0b\u2009c\u3000d\u200be\u2060f\ufeffg\u180eh"),
    ("control separators", "a\x1cb\x1dc\x1ed\x1fe\x85f"),
    ("greek sigma", "ΟΔΥΣΣΕΥΣ ΣΟΦΟΣ Σ ΑΣ. ΑΣ' Α.Σ ΑΣ\u0301 ἈΣ Σ\u0301Α"),
    ("special lowercase", "İstanbul KELVIN \u212a \u2126 ǅ ǈ ǋ ẞ ΐ ﬀ Ⅻ Ⓐ 𐐀 𞤀"),
    ("turkish and lithuanian", "İİ ı I\u0307 Ì Í Ĩ"),
    ("fullwidth", "ＦＵＬＬ ｗｉｄｔｈ １２３ ＿"),
    ("math letters", "𝐁𝐨𝐥𝐝 𝔉𝔯𝔞𝔨 𝟙𝟚"),
    ("symbols", "$100 €5 ©2020 ™ ° § ¶ • … — – ~ ^ ` | \\ / @ # % & * + = < >"),
    ("punctuation runs", "What?!?! No... way!!! (really) [yes] {no} \"quoted\""),
    ("html entities", "&amp; &lt;b&gt; &#39;s <i>italic</i> <p>para</p>"),
    ("urls", "see http://www.imdb.com/title/tt0111161/ or mail me@example.com"),
    ("lone surrogate free astral", "𝄞 music 𠜎 rare han"),
    ("variation selectors", "☺\ufe0f ok\ufe0e x\U000e0100y"),
    ("zero width joiner in words", "ab\u200dcd ab\u200ccd"),
    ("mixed scripts", "Hello Привет Γειά שלום مرحبا नमस्ते こんにちは 안녕하세요"),
    ("devanagari marks", "नमस्ते हिन्दी क़ ख़"),
    ("thai", "ภาพยนตร์เรื่องนี้ดีมาก"),
    ("treebank clitics", "it does n't work , it 's bad ; they 're , we 've , i 'm , you 'll , he 'd . "
     "DOES N'T IT 'S -LRB- aside -RRB- -lsb- x -rsb- -lcb- y -rcb- -Lrb- n't 's alone"),
    ("clitics and spaces", "do\tn't do\u00a0n't do\u3000's do\x85'll do\u200bn't do n'ta it 'sx it 's_ it 'd9 x n't"),
    ("curly apostrophes", "doesn’t it‘s ʼtis don ’t it ’s “quoted”"),
    ("brackets with unicode case folds", "-lſb- x -rſb- -LRB- -Lrb- -lrb-x -Krb-"),
    ("clitics after non-words", "! n't 1 's é 'd ö n't _ 're 👍 'm"),
    ("negation", "doesn't DOESN'T Doesn’t isn‘t wasnʼt can't won't ain't does n't ca n't wo n't is n’t N'T n't "
     "shouldn't've should n't 've don'tcha n'tn't !n't 'n't xn't_ én't 1n't 👍n't n't. (isn't) \"didn't\" "
     "don' t don 't donn't do\u00a0n't do\u3000n’t do\u200bn't n\u2019\u2019t nʼt"),
    ("long word", "a" * 5000),
    ("many tokens", " ".join(f"word{i % 97}" for i in range(1200))),
    ("long review", "This movie was great. " * 700),
    ("one megabyte", ("Great acting, dull plot; 10/10 would not watch again! Ça va? Σοφός. 👍 " * 15000)[: 1 << 20]),
]


def adversarial() -> list[tuple[str, str]]:
    return list(ADVERSARIAL)


def spec_variants(tokenizer: Tokenizer) -> list[Tokenizer]:
    """The shipped tokenizer and variants of its spec that exercise every JS branch."""
    spec = tokenizer.spec
    variants = [
        spec,
        replace(spec, punctuation="keep"),
        replace(spec, lowercase=False, html_breaks=False),
        replace(spec, lowercase=False, punctuation="keep", truncation="post", max_len=300),
        replace(spec, join_clitics=True),
        replace(spec, join_clitics=True, lowercase=False, punctuation="keep"),
        replace(spec, join_clitics=True, split_negation=True),
        replace(spec, split_negation=True, lowercase=False, punctuation="keep"),
        replace(spec, lowercase_mapping="simple", join_clitics=False, split_negation=False,
                negation_as_not=False),  # text-graph spec
        replace(spec, split_negation=True, negation_as_not=True),  # "n't" looked up as "not"
    ]
    return [Tokenizer(variant, tokenizer.vocab) for variant in variants]


def write_corpus(path: str | Path, tokenizers: list[Tokenizer], rows: Iterable[tuple[int, str, str]]) -> int:
    """rows: (tokenizer index, name, text). Returns the number of rows written."""
    count = 0
    with open(path, "w", encoding="utf-8") as out:
        out.write(json.dumps({"tokenizers": [t.to_dict() for t in tokenizers]}, ensure_ascii=False) + "\n")
        for index, name, text in rows:
            tokenizer = tokenizers[index]
            tokens = tokenizer.tokenize(text)
            ids = [tokenizer.id_of(token) for token in tokens]
            out.write(json.dumps({"tokenizer": index, "name": name, "text": text, "tokens": tokens, "ids": ids},
                                 ensure_ascii=False) + "\n")
            count += 1
    return count


def code_point_texts(chunk: int = 256) -> Iterable[tuple[str, str]]:
    """Every code point but the surrogates, `chunk` to a text, so that str.lower(), \\w and \\s are
    compared on all of Unicode, not only on what the reviews contain. Unassigned code points are in:
    a browser whose Unicode is newer than Python's must still treat them as Python does."""
    points = [cp for cp in range(0x110000) if not 0xD800 <= cp <= 0xDFFF]
    for start in range(0, len(points), chunk):
        part = points[start : start + chunk]
        yield f"code points U+{part[0]:04X}..U+{part[-1]:04X}", "".join(map(chr, part))


def corpus_rows(tokenizers: list[Tokenizer], imdb_texts: list[str]) -> Iterable[tuple[int, str, str]]:
    """The IMDB texts under the shipped spec (index 0), the adversarial set under every variant,
    all of Unicode under the punctuation-keeping variants (index 1 lowercases, index 3 does not), the
    clitic case folds under the join_clitics / split_negation variants and "n't" beside every code
    point under split_negation (index 7), all of Unicode under lowercase_mapping "simple" (index 8)."""
    for i, text in enumerate(imdb_texts):
        yield 0, f"imdb test row {i + 1}", text
    for index in range(len(tokenizers)):
        for name, text in ADVERSARIAL:
            yield index, name, text
    for name, text in code_point_texts():
        yield 1, name, text
    for name, text in code_point_texts():
        yield 3, name, text
    for name, text in clitic_case_texts():
        for index in (4, 5, 6, 7):
            yield index, name, text
    for name, text in negation_neighbour_texts():
        yield 7, name, text
    for name, text in code_point_texts():
        yield 8, name, text


def negation_neighbour_texts(chunk: int = 64) -> Iterable[tuple[str, str]]:
    """split_negation looks at the characters either side of "n't": each code point of the BMP (but the
    surrogates) and every 97th above it, before a curly "n’t" and after one (curly, so that a missed
    or a wrong split changes the tokens). The word/space tables themselves are checked on all of
    Unicode above; this catches an engine bending them around "n't" (as JS's "i" flag did). Short
    rows, so that truncation to max_len hides nothing."""
    points = [cp for cp in range(0x10000) if not 0xD800 <= cp <= 0xDFFF] + list(range(0x10000, 0x110000, 97))
    for start in range(0, len(points), chunk):
        part = points[start : start + chunk]
        yield (f"n't beside U+{part[0]:04X}..U+{part[-1]:04X}",
               " ".join(f"{chr(cp)}n\u2019t n\u2019t{chr(cp)}" for cp in part))


def clitic_case_texts() -> Iterable[tuple[str, str]]:
    """join_clitics' patterns ignore case: every code point that Python's IGNORECASE matches to a
    letter of the clitics, in each clitic position."""
    letters = sorted(set("ntsrevmld"))
    every = (chr(cp) for cp in range(0x110000) if not 0xD800 <= cp <= 0xDFFF)
    candidates = [ch for ch in every if re.fullmatch(f"(?i)[{''.join(letters)}]", ch)]
    for letter in letters:
        matches = [ch for ch in candidates if re.fullmatch(f"(?i){letter}", ch)]
        for clitic in ("n't", "'s", "'re", "'ve", "'m", "'ll", "'d"):
            if letter in clitic:
                yield f"clitic {clitic} with {letter}", " ".join("it " + clitic.replace(letter, m) for m in matches)


if __name__ == "__main__":
    import runtime
    from runtime.io.tables import TableReader

    shipped = runtime.load("imdb").tokenizer
    variants = spec_variants(shipped)
    here = Path(__file__).resolve().parents[1]
    reader = TableReader(here.parent / "shared" / "datasets" / "imdb" / "test.csv.gz")
    texts = [record["text"] for _, record in reader.records()]
    print(write_corpus(sys.argv[1], variants, corpus_rows(variants, texts)), "rows")


# Every string of up to five of these symbols: the characters _NEGATION looks at (n, t, both cases, straight and
# curly apostrophes, and "ʼ", a letter), a word character that is neither, a space, another mark and an HTML break.
NEGATION_SYMBOLS = ["n", "t", "N", "T", "7", "'", "\u2019", "\u02bc", " ", "-", "<br>"]


def negation_strings(longest: int = 5) -> list[str]:
    return ["".join(p) for n in range(longest + 1) for p in itertools.product(NEGATION_SYMBOLS, repeat=n)]
