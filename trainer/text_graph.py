"""The text graph (`model_text.onnx`): a classifier bundle's tokenizer compiled into ONNX, in front of
its token graph, so that any ONNX Runtime scores raw strings with no tokenizer of its own.

Only ONNX Runtime's built-in ops, so it runs wherever the token graph runs (Python, Node, the web,
the C/C++/C#/Java/Objective-C packages, the .ort mobile format):

    text [batch] string
      -> StringNormalizer (LOWER, locale C.UTF-8)                     spec.lowercase (simple mapping)
      -> com.microsoft.Tokenizer, tokenexp = <br\\s*/?> | the word find-all   [batch, T]
      -> com.microsoft.Tokenizer, separators = <br\\s*/?>: breaks become padding   spec.html_breaks
         (spec.split_negation: two find-all passes instead, see `_split_negation`)
      -> ai.onnx.ml.LabelEncoder: vocabulary -> id ("n't" -> the id of "not" under spec.negation_as_not),
         "" (padding) -> 0, anything else -> the OOV id
      -> compaction (CumSum, TopK, GatherElements): tokens to the left, truncation side and max_len
      -> the token graph (model.onnx, fused LSTM with in-graph sequence_lens)
    -> probability [batch], attention [batch, time], tokens [batch, time] string, lengths [batch] int32

Python's `\\w` and `\\s` are written out as the code point ranges the running Python computes (RE2's
`\\p{L}` follows a newer Unicode: 5,010 code points differ from Python 3.11's `\\w`), so the splitting
is Python's by construction; `tests/test_tokenizer_graph.py` proves it on every code point. What the
built-in ops cannot do is refused by `refusal(spec)`, with the feature named.
"""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path
from typing import Callable, Sequence

import numpy as np
import onnx
from onnx import TensorProto, helper

from runtime.bundle import MANIFEST, Bundle, sha256_of, write_manifest
from runtime.tokenizer import OOV_ID, PAD_ID, Tokenizer, TokenizerSpec
from trainer.converter import ParityError, parity_texts
from trainer.errors import TextGraphError  # noqa: F401  (raised here; defined with the other errors)

FILE = "model_text.onnx"
ROLE = "text"
MAX_IR_VERSION = 10  # onnxruntime-web 1.30 refuses IR 14; 10 loads
TOLERANCE = 1e-6  # fp32: the same ids enter the same token graph, so the outputs are equal
LOCALE = "C.UTF-8"  # StringNormalizer's default en_US.UTF-8 fails to load on Debian (and on iOS)
PREFIX = "text/"  # names of the tokenizer nodes, apart from the token graph's
CONTRACT = {
    "file": FILE,
    "inputs": [{"name": "text", "type": "string", "shape": ["batch"]}],
    "outputs": [
        {"name": "probability", "type": "float32", "shape": ["batch"]},
        {"name": "attention", "type": "float32", "shape": ["batch", "time"]},
        {"name": "tokens", "type": "string", "shape": ["batch", "time"]},
        {"name": "lengths", "type": "int32", "shape": ["batch"]},
    ],
}


# === What compiles ===
def refusal(spec: TokenizerSpec) -> str | None:
    """Why `spec` cannot become a text graph (one line naming the feature), or None if it can."""
    if spec.mode != "word":
        return (
            f"tokenizer mode {spec.mode!r}: SentencePiece is not among ONNX Runtime's built-in ops "
            "(only word-mode bundles get a text graph)"
        )
    if spec.join_clitics:
        return (
            "tokenizer feature join_clitics: rewriting treebank clitics, brackets and curly apostrophes needs a "
            "regex replace, which ONNX Runtime's built-in string ops lack"
        )
    if spec.split_negation and spec.punctuation != "strip":
        return (
            "tokenizer feature split_negation with punctuation 'keep': the compiled negation split reads the "
            "character before each word as its context, which 'keep' needs as a token of its own"
        )
    if spec.lowercase and spec.lowercase_mapping != "simple":
        return (
            "tokenizer lowercase_mapping 'full': Python's str.lower() turns 'İ' into two code points and a "
            "word-final 'Σ' into 'ς', ONNX Runtime's StringNormalizer maps one code point to one; a bundle "
            "needs lowercase_mapping 'simple' (see --lowercase-mapping)"
        )
    return None


# === Patterns: Python's \w and \s as RE2 classes ===
def code_point_ranges(predicate: Callable[[str], bool]) -> list[tuple[int, int]]:
    """Inclusive ranges of the code points (surrogates excluded) where `predicate(chr(cp))` holds."""
    ranges: list[list[int]] = []
    for cp in range(0x110000):
        if 0xD800 <= cp <= 0xDFFF or not predicate(chr(cp)):
            continue
        if ranges and ranges[-1][1] == cp - 1:
            ranges[-1][1] = cp
        else:
            ranges.append([cp, cp])
    return [(a, b) for a, b in ranges]


def re2_class_body(ranges: Sequence[tuple[int, int]]) -> str:
    return "".join(f"\\x{{{a:x}}}" if a == b else f"\\x{{{a:x}}}-\\x{{{b:x}}}" for a, b in ranges)


def patterns(spec: TokenizerSpec) -> tuple[str, str]:
    """(RE2 of an HTML break, RE2 of one token): Python's `<br\\s*/?>` (IGNORECASE) and the word
    find-all of `runtime.tokenizer`, with `\\w` = isalnum() or "_" and `\\s` = isspace()."""
    word = re2_class_body(code_point_ranges(lambda ch: ch.isalnum() or ch == "_"))
    space = re2_class_body(code_point_ranges(str.isspace))
    token = f"[{word}]+(?:'[{word}]+)*"
    if spec.punctuation == "keep":
        token += f"|[^{word}{space}]"
    return f"<[bB][rR][{space}]*/?>", token


# === The graph ===
class _Nodes:
    """Collects nodes and constants under PREFIX."""

    def __init__(self):
        self.nodes: list[onnx.NodeProto] = []
        self.initializers: list[onnx.TensorProto] = []

    def const(self, name: str, values, dtype=TensorProto.INT64, dims=None) -> str:
        values = list(values) if isinstance(values, (list, tuple)) else [values]
        self.initializers.append(
            helper.make_tensor(PREFIX + name, dtype, dims if dims is not None else [len(values)], values)
        )
        return PREFIX + name

    def add(self, op: str, inputs: list[str], output: str, domain: str = "", **attributes) -> str:
        self.nodes.append(
            helper.make_node(op, inputs, [PREFIX + output], name=PREFIX + output, domain=domain, **attributes)
        )
        return PREFIX + output


def _find(g: _Nodes, text: str, output: str, **mode) -> str:
    """com.microsoft.Tokenizer: `tokenexp=` (find-all) or `separators=` (split); padding is ""."""
    return g.add("Tokenizer", [text], output, domain="com.microsoft", mark=0, mincharnum=1, pad_value="", **mode)


# === split_negation: Python's _NEGATION.sub, rebuilt from find-alls (see _split_negation) ===
_APOSTROPHES = "'\u2019\u2018\u02bc"  # what _NEGATION takes for an apostrophe


def _negation_patterns(spec: TokenizerSpec) -> dict[str, str]:
    """The RE2 patterns of `_split_negation`. ONNX Runtime's Tokenizer takes the leftmost-longest match
    (RE2's longest_match), so each pattern is written as the set of strings it accepts."""
    word = re2_class_body(code_point_ranges(lambda ch: ch.isalnum() or ch == "_"))
    space = re2_class_body(code_point_ranges(str.isspace))
    hexes = {c: f"\\x{{{ord(c):x}}}" for c in _APOSTROPHES}
    a, seps, mod = "[" + "".join(hexes.values()) + "]", "".join(hexes[c] for c in _APOSTROPHES[:3]), hexes["\u02bc"]
    curly = hexes["\u2019"] + hexes["\u2018"]
    # "ʼ" (U+02BC) is a letter, so a word character: a unit spelt with it lies inside one word.
    brk = f"<[bB][rR][{space}]*/?>" if spec.html_breaks else None
    unit = f"[nN]{a}[tT]"  # what _NEGATION replaces, before its lookarounds
    after = f"(?:[{seps}]|$)"  # no word character after the unit: inside a chunk, an apostrophe or the end
    # Inside a chunk's body every character is a word character or one of the three apostrophes that are
    # not, so there a word character is anything but those: the patterns below stay small.
    w, not_n, not_nt, not_mod = f"[^{seps}]", f"[^nN{seps}]", f"[^nNtT{seps}]", f"[^{mod}{seps}]"
    # A straight run (w+('w+)*) as parts (words). Nn: a part of two or more characters ending in n (a
    # part "t" after it makes a unit: its n follows a word character). Um: a part ending in a unit
    # spelt "nʼt" after a word character. O: any other part; O2: any other part but "t". Q: runs with
    # no Um part and no part "t" after an Nn part: no unit inside and none at the end.
    nn = f"{w}+[nN]"
    o2 = f"(?:{w}*{not_nt}|[nN]|{w}*{not_mod}[tT]|{w}*{not_n}{mod}[tT]|{mod}[tT]|[nN]{mod}[tT])"
    o = f"(?:{o2}|[tT])"
    g = f"(?:{o}|(?:{nn}')+{o2})"
    q = f"(?:{g}(?:'{g})*(?:'{nn}(?:'{nn})*)?|{nn}(?:'{nn})*)"
    # the stem before a unit: Q, then any last part (whatever it ends in, the unit's n follows it)
    stem = f"(?:{q}')?{w}+"
    lead = f"{brk}|[^{word}]" if brk else f"[^{word}]"
    return {
        # pass 1: words joined by apostrophes, with the character (or HTML break) before them
        "chunk": f"(?:{lead})?[{word}]+(?:{a}[{word}]+)*" + (f"|{brk}" if brk else ""),
        "lead": f"^(?:{lead})",  # cut off, leaving the body
        # a unit may open the body when a space, a break or the text's start comes before it
        "start_like": f"^(?:{brk}|[{word}{space}])" if brk else f"^[{word}{space}]",
        "opening": f"^{unit}{after}",
        "opening_unit": f"^{unit}",
        # pass 2, in a body: a stem with the unit after it (and the apostrophe after that), or a
        # straight run holding no unit
        "tokens": f"{stem}{unit}{after}|{q}",
        "candidate": unit,  # a body without one is split as runs alone
        "plain": f"{w}+(?:'{w}+)*",
        "stem_unit": f"^[^{curly}]*{w}{unit}[{seps}]?$",  # no curly apostrophe before the unit
        "unit_at_end": f"{unit}[{seps}]?$",
    }


def _first(g: _Nodes, strings: str, output: str, **mode) -> str:
    """com.microsoft.Tokenizer on a 1-D string tensor, one result per string ("" when it finds none)."""
    found = _find(g, strings, output + "_all", **mode)  # (N, K), K >= 0
    return g.add("Reshape", [g.add("Slice", [_pad_column(g, found, output), g.const(output + "_s", [0]),
                                             g.const(output + "_e", [1]), g.const(output + "_axis", [1])],
                                   output + "_first"), g.const(output + "_flat", [-1])], output)


def _pad_column(g: _Nodes, strings: str, output: str, columns: str | None = None) -> str:
    """string (N, K) -> (N, K + c), c columns of "" appended: `columns` (int64 [1]) or one (so K + 1 >= 1)."""
    rows = g.add("Slice", [g.add("Shape", [strings], output + "_shape"), g.const(output + "_r0", [0]),
                           g.const(output + "_r1", [1])], output + "_rows")
    columns = columns or g.const(output + "_one", [1])
    pad = g.add("Expand", [g.const(output + "_empty", [""], TensorProto.STRING, [1, 1]),
                           g.add("Concat", [rows, columns], output + "_pad_shape", axis=0)], output + "_pad")
    return g.add("Concat", [strings, pad], output + "_padded", axis=1)


def _matches(g: _Nodes, strings: str, pattern: str, output: str) -> str:
    """bool [N]: `pattern` is found in the string (anchored with ^ / $ where a pattern says so)."""
    return _non_empty(g, _first(g, strings, output + "_hit", tokenexp=pattern), output, TensorProto.BOOL)


def _non_empty(g: _Nodes, strings: str, output: str, to: int) -> str:
    """`strings` != "" elementwise, as `to` (bool or int64): a LabelEncoder, as ONNX's Equal takes no strings
    before opset 19."""
    return g.add("Cast", [g.add("LabelEncoder", [strings], output + "_code", domain="ai.onnx.ml", keys_strings=[""],
                                values_int64s=[0], default_int64=1)], output, to=to)


def _split_negation(g: _Nodes, text: str, spec: TokenizerSpec) -> str:
    """Python's `_NEGATION.sub(r" \\1'\\2 ")` and then the word find-all, from find-alls alone (ONNX
    Runtime has no regex replace): string [batch, T] padded with "".

    A unit ("n't", any apostrophe) is split off when a word character, a space, a break or the text's
    start comes before it and no word character after it. Pass 1 cuts the text into chunks: words
    joined by apostrophes, each with the character (or HTML break) before it. A chunk is never followed
    by a word character, so inside it both sides of every unit are known. A chunk's body (the chunk
    without that character) without "n't" is split into straight runs; the few that hold one
    (gathered apart, so the work is paid for them alone) go through `_negation_tokens`."""
    p = _negation_patterns(spec)
    chunks = _find(g, text, "neg_chunks", tokenexp=p["chunk"])  # (B, T)
    batch = g.add("Slice", [g.add("Shape", [chunks], "neg_b_shape"), g.const("neg_b0", [0]), g.const("neg_b1", [1])],
                  "neg_batch")
    chunks = g.add("Reshape", [_pad_column(g, chunks, "neg_chunks"), g.const("neg_flat", [-1])], "neg_flat_chunks")
    body = _first(g, chunks, "neg_body", separators=[p["lead"]])  # (N,), N >= batch
    plain = _find(g, body, "neg_plain", tokenexp=p["plain"])  # (N, K1)
    candidate = _matches(g, body, p["candidate"], "neg_candidate")
    picked = g.add("Squeeze", [g.add("NonZero", [candidate], "neg_nonzero"), g.const("neg_axis0", [0])], "neg_picked")
    dummy = g.const("neg_dummy", ["n't"], TensorProto.STRING, [1])  # so that no tensor below is empty

    def gathered(strings: str, output: str) -> str:
        # GatherElements, not Gather: onnxruntime 1.32's Gather on strings copied one string per row of 2-D data
        return g.add("Concat", [g.add("GatherElements", [strings, picked], output + "_gathered", axis=0), dummy],
                     output, axis=0)

    found = _negation_tokens(g, gathered(chunks, "neg_c_chunks"), gathered(body, "neg_c_body"), p)  # (C + 1, K2)
    # one table of both: row i is chunk i's plain runs, row N + j the j-th candidate's tokens
    names = [t[len(PREFIX):] for t in (plain, found)]
    widths = [g.add("Slice", [g.add("Shape", [t], n + "_shape2"), g.const(n + "_w0", [1]), g.const(n + "_w1", [2])],
                    n + "_width") for t, n in zip((plain, found), names)]
    width = g.add("Max", widths, "neg_width")
    table = g.add("Concat", [_pad_column(g, t, n + "_w", g.add("Sub", [width, own], n + "_missing"))
                             for t, n, own in zip((plain, found), names, widths)], "neg_table", axis=0)
    count = g.add("Shape", [chunks], "neg_count")  # [N]
    rank = g.add("Sub", [g.add("CumSum", [g.add("Cast", [candidate], "neg_candidate_i", to=TensorProto.INT64),
                                          g.const("neg_axis0s", 0, dims=[])], "neg_cumsum"),
                         g.const("neg_one_i", 1, dims=[])], "neg_rank")
    own_row = g.add("Range", [g.const("neg_r_start", 0, dims=[]),
                              g.add("Squeeze", [count, g.const("neg_axis0q", [0])], "neg_count0"),
                              g.const("neg_r_step", 1, dims=[])], "neg_own_row")
    row = g.add("Where", [candidate, g.add("Add", [rank, count], "neg_found_row"), own_row], "neg_row")
    rows = g.add("Expand", [g.add("Unsqueeze", [row, g.const("neg_axis1r", [1])], "neg_row_2d"),
                            g.add("Concat", [count, width], "neg_merged_shape", axis=0)], "neg_rows")
    merged = g.add("GatherElements", [table, rows], "neg_merged", axis=0)  # (N, width)
    return g.add("Reshape", [merged, g.add("Concat", [batch, g.const("neg_minus", [-1])], "neg_row_shape", axis=0)],
                 "found")  # (B, chunks x width)


def _negation_tokens(g: _Nodes, chunks: str, body: str, p: dict[str, str]) -> str:
    """The tokens of chunks holding "n't": string (C, K), moved left, padded with "". A unit opening the
    body is cut off first when a space, a break or the text's start comes before it. Pass 2 finds the
    rest's tokens: a stem with the unit after it, or a straight run holding no unit. A unit is written
    with a straight apostrophe (LabelEncoder), a stem is cut from its unit (Tokenizer separators)."""
    canon = {n + a + t + after: n + "'" + t for n in "nN" for a in _APOSTROPHES for t in "tT"
             for after in ("",) + tuple(_APOSTROPHES[:3])}

    def written(strings: str, output: str) -> str:  # a unit as _NEGATION writes it
        return g.add("LabelEncoder", [strings], output, domain="ai.onnx.ml", keys_strings=list(canon),
                     values_strings=list(canon.values()), default_string="")

    empty = g.const("neg_empty", [""], TensorProto.STRING, [])
    opening = g.add("And", [_matches(g, chunks, p["start_like"], "neg_start_like"),
                            _matches(g, body, p["opening"], "neg_opens")], "neg_opening")
    head = g.add("Where", [opening, written(_first(g, body, "neg_head_unit", tokenexp=p["opening_unit"]),
                                            "neg_head_written"), empty], "neg_head")
    body = g.add("Where", [opening, _first(g, body, "neg_rest", separators=[p["opening_unit"]]), body], "neg_rest_body")
    found = _pad_column(g, _find(g, body, "neg_found", tokenexp=p["tokens"]), "neg_found")  # (C, K + 1)
    matches = g.add("Reshape", [found, g.const("neg_flat2", [-1])], "neg_matches")  # (M,), M >= 1
    stem_unit = _matches(g, matches, p["stem_unit"], "neg_is_stem_unit")
    first = g.add("Where", [stem_unit, _first(g, matches, "neg_stem", separators=[p["unit_at_end"]]), matches],
                  "neg_first")
    second = g.add("Where", [stem_unit, written(_first(g, matches, "neg_unit", tokenexp=p["unit_at_end"]),
                                                "neg_unit_written"), empty], "neg_second")
    column = g.const("neg_axis1", [1])
    pairs = g.add("Concat", [g.add("Unsqueeze", [first, column], "neg_first_2d"),
                             g.add("Unsqueeze", [second, column], "neg_second_2d")], "neg_pairs", axis=1)  # (M, 2)
    chunk_rows = g.add("Slice", [g.add("Shape", [found], "neg_n_shape"), g.const("neg_n0", [0]),
                                 g.const("neg_n1", [1])], "neg_chunk_rows")
    per_chunk = g.add("Reshape", [pairs, g.add("Concat", [chunk_rows, g.const("neg_minus_one", [-1])],
                                               "neg_chunk_shape", axis=0)], "neg_per_chunk")  # (C, 2 (K + 1))
    tokens = g.add("Concat", [g.add("Unsqueeze", [head, column], "neg_head_2d"), per_chunk], "neg_tokens", axis=1)
    return _left(g, tokens, "neg_left")


def _kept_first(g: _Nodes, keep: str, position: str, width: str, output: str) -> str:
    """int64 (R, W): per row, the columns where `keep` holds, ordered by `position`, then the others."""
    columns = g.add("Range", [g.const(output + "_start", 0, dims=[]), width, g.const(output + "_step", 1, dims=[])],
                    output + "_columns")
    key = g.add("Where", [keep, position, g.add("Add", [columns, width], output + "_later")], output + "_key")
    g.add("TopK", [key, g.add("Unsqueeze", [width, g.const(output + "_axis0", [0])], output + "_k1")],
          output + "_sorted", axis=1, largest=0, sorted=1)
    g.nodes[-1].output.append(PREFIX + output + "_order")
    return PREFIX + output + "_order"


def _left(g: _Nodes, strings: str, output: str) -> str:
    """string (R, K) -> (R, K'): the non-empty strings of each row moved left in order, K' = the most a
    row holds (at least 1)."""
    real = _non_empty(g, strings, output + "_real", TensorProto.INT64)
    width = g.add("Gather", [g.add("Shape", [strings], output + "_shape"), g.const(output + "_one", 1, dims=[])],
                  output + "_k")
    position = g.add("Sub", [g.add("CumSum", [real, g.const(output + "_axis", 1, dims=[])], output + "_cumsum"),
                             g.const(output + "_one_i", 1, dims=[])], output + "_position")
    order = _kept_first(g, g.add("Cast", [real], output + "_bool", to=TensorProto.BOOL), position, width, output)
    kept = g.add("Max", [g.add("ReduceMax", [g.add("ReduceSum", [real, g.const(output + "_axes", [1])],
                                                   output + "_count", keepdims=0)], output + "_most", keepdims=1),
                         g.const(output + "_least", [1])], output + "_kept")
    return g.add("Slice", [g.add("GatherElements", [strings, order], output + "_moved", axis=1),
                           g.const(output + "_s0", [0]), kept, g.const(output + "_s1", [1])], output)


def _split(g: _Nodes, text: str, spec: TokenizerSpec) -> str:
    """Lowercase, find the tokens, drop the HTML breaks: string [batch, T], padded with ""."""
    breaks, token = patterns(spec)
    if spec.lowercase:
        text = g.add("StringNormalizer", [text], "lowercased", case_change_action="LOWER", locale=LOCALE)
    if spec.split_negation:
        return _split_negation(g, text, spec)
    if not spec.html_breaks:
        return _find(g, text, "found", tokenexp=token)
    # A break is a token of its own (it starts with "<", which no word holds, and outlasts a "<" mark),
    # so finding breaks and words in one pass cuts the text where Python's `sub(" ")` puts a space.
    found = _find(g, text, "found_with_breaks", tokenexp=f"{breaks}|{token}")  # (B, T)
    # Each token cut at a break: a break leaves nothing, any other token itself: (B, T, 1) or (B, T, 0)
    found = _find(g, found, "found_in_tokens", separators=[breaks])
    return g.add("Reshape", [found, g.const("batch_rows", [0, -1])], "found")  # (B, T) or (B, 0)


def _compact(g: _Nodes, found: str, tokenizer: Tokenizer) -> tuple[str, str, str]:
    """(ids int32 [B, W], tokens string [B, W], lengths int32 [B]): the kept tokens moved left, in order,
    truncated to max_len on the spec's side, W = max(longest row, 1) as `Tokenizer.encode`."""
    spec = tokenizer.spec
    tokens = _pad_column(g, found, "found")  # (B, T1), T1 >= 1
    lookup = tokenizer.lookup()  # the vocabulary, and "n't" -> "not"'s id under negation_as_not
    ids = g.add(
        "LabelEncoder",
        [tokens],
        "ids64",
        domain="ai.onnx.ml",
        keys_strings=list(lookup) + [""],
        values_int64s=list(lookup.values()) + [PAD_ID],
        default_int64=OOV_ID,
    )
    real = g.add(
        "Cast", [g.add("Greater", [ids, g.const("pad_id", PAD_ID, dims=[])], "is_real")], "real", to=TensorProto.INT64
    )
    width = g.add("Gather", [g.add("Shape", [tokens], "padded_shape"), g.const("one_scalar", 1, dims=[])], "width")
    position = g.add(
        "Sub",
        [g.add("CumSum", [real, g.const("time_axis", 1, dims=[])], "cumsum"), g.const("one_i", 1, dims=[])],
        "position",
    )  # (B, T1): index among the row's real tokens
    count = g.add("ReduceSum", [real, g.const("axis1", [1])], "count", keepdims=1)  # (B, 1)
    max_len = g.const("max_len", spec.max_len, dims=[])
    if spec.truncation == "pre":  # keep the last max_len tokens
        shift = g.add("Max", [g.add("Sub", [count, max_len], "excess"), g.const("zero_i", 0, dims=[])], "shift")
        position = g.add("Sub", [position, shift], "kept_position")
        inside = g.add("GreaterOrEqual", [position, g.const("zero_p", 0, dims=[])], "inside")
    else:  # keep the first max_len tokens
        inside = g.add("Less", [position, max_len], "inside")
    keep = g.add("And", [g.add("Cast", [real], "real_bool", to=TensorProto.BOOL), inside], "keep")
    order = _kept_first(g, keep, position, width, "compact")  # (B, T1): the kept tokens' columns first, in order
    lengths = g.add("Min", [g.add("Squeeze", [count, g.const("axis1_s", [1])], "count_1d"), max_len], "lengths64")
    out_width = g.add(
        "Max", [g.add("ReduceMax", [lengths], "longest", keepdims=0), g.const("one_w", 1, dims=[])], "out_width"
    )
    order = g.add(
        "Slice",
        [
            order,
            g.const("start_1d", [0]),
            g.add("Unsqueeze", [out_width, g.const("axis0_w", [0])], "out_width_1d"),
            g.const("axis1_w", [1]),
        ],
        "order_w",
    )
    in_row = g.add(
        "Less",
        [
            g.add("Range", [g.const("start_w", 0, dims=[]), out_width, g.const("step_w", 1, dims=[])], "out_columns"),
            g.add("Unsqueeze", [lengths, g.const("axis1_u", [1])], "lengths_2d"),
        ],
        "in_row",
    )  # (B, W)
    ids = g.add(
        "Where",
        [in_row, g.add("GatherElements", [ids, order], "gathered_ids", axis=1), g.const("pad", PAD_ID, dims=[])],
        "ids_w",
    )
    ids = g.add("Cast", [ids], "ids", to=TensorProto.INT32)
    tokens = g.add(
        "Where",
        [
            in_row,
            g.add("GatherElements", [tokens, order], "gathered_tokens", axis=1),
            g.const("empty_s", [""], TensorProto.STRING, []),
        ],
        "tokens_w",
    )
    return ids, tokens, g.add("Cast", [lengths], "lengths", to=TensorProto.INT32)


def _tokenizer_nodes(tokenizer: Tokenizer) -> tuple[_Nodes, str, str, str]:
    reason = refusal(tokenizer.spec)
    if reason:
        raise TextGraphError(f"no text graph: {reason}")
    g = _Nodes()
    ids, tokens, lengths = _compact(g, _split(g, "text", tokenizer.spec), tokenizer)
    return g, ids, tokens, lengths


OPSETS = {"": 17, "ai.onnx.ml": 2, "com.microsoft": 1}  # what the tokenizer nodes need at least


def _outputs(graph: onnx.GraphProto, tokens: str, lengths: str) -> None:
    graph.node.extend(
        [
            helper.make_node("Identity", [tokens], ["tokens"], name=PREFIX + "tokens_out"),
            helper.make_node("Identity", [lengths], ["lengths"], name=PREFIX + "lengths_out"),
        ]
    )
    graph.output.extend(
        [
            helper.make_tensor_value_info("tokens", TensorProto.STRING, ["batch", "time"]),
            helper.make_tensor_value_info("lengths", TensorProto.INT32, ["batch"]),
        ]
    )


def build_tokenizer_graph(tokenizer: Tokenizer) -> onnx.ModelProto:
    """The tokenizer part alone: text -> ids int32 [B, W], tokens, lengths (the conformance test runs it)."""
    g, ids, tokens, lengths = _tokenizer_nodes(tokenizer)
    graph = helper.make_graph(
        g.nodes + [helper.make_node("Identity", [ids], ["ids"], name=PREFIX + "ids_out")],
        "tokenizer",
        [helper.make_tensor_value_info("text", TensorProto.STRING, ["batch"])],
        [helper.make_tensor_value_info("ids", TensorProto.INT32, ["batch", "time"])],
        g.initializers,
    )
    _outputs(graph, tokens, lengths)
    proto = helper.make_model(graph, opset_imports=[helper.make_opsetid(d, v) for d, v in OPSETS.items()], ir_version=8)
    onnx.checker.check_model(proto)
    return proto


def build_text_graph(token_graph: onnx.ModelProto, tokenizer: Tokenizer) -> onnx.ModelProto:
    """The text graph: `tokenizer` compiled into nodes in front of `token_graph` (input `tokens`)."""
    if token_graph.ir_version > MAX_IR_VERSION:
        raise TextGraphError(
            f"the token graph has IR version {token_graph.ir_version}; a text graph needs <= {MAX_IR_VERSION}"
        )
    g, ids, tokens, lengths = _tokenizer_nodes(tokenizer)
    proto = onnx.ModelProto()
    proto.CopyFrom(token_graph)
    graph = proto.graph
    for node in graph.node:  # the token graph reads the compiled ids
        node.input[:] = [ids if name == "tokens" else name for name in node.input]
    existing = list(graph.node)
    del graph.node[:]
    graph.node.extend(g.nodes + existing)
    graph.initializer.extend(g.initializers)
    del graph.input[:]
    graph.input.append(helper.make_tensor_value_info("text", TensorProto.STRING, ["batch"]))
    outputs = sorted(graph.output, key=lambda o: ["probability", "attention"].index(o.name))
    del graph.output[:]
    graph.output.extend(outputs)
    _outputs(graph, tokens, lengths)
    have = {opset.domain: opset.version for opset in proto.opset_import}
    for domain, version in OPSETS.items():
        if have.get(domain, version) < version:
            raise TextGraphError(
                f"the token graph imports {domain or 'ai.onnx'} {have[domain]}; the text graph needs >= {version}"
            )
        if domain not in have:
            proto.opset_import.append(helper.make_opsetid(domain, version))
    graph.name = (graph.name or "graph") + "_text"
    onnx.checker.check_model(proto)
    return proto


# === Parity gate ===
def _run(session, texts: Sequence[str]) -> dict:
    names = [output.name for output in session.get_outputs()]
    return dict(zip(names, session.run(None, {"text": np.array(list(texts), dtype=object)})))


def check_text_parity(
    text_graph: bytes,
    token_graph: bytes,
    tokenizer: Tokenizer,
    texts: Sequence[str],
    tolerance: float = TOLERANCE,
    batch: int = 64,
) -> dict:
    """The text graph vs the token graph fed by `runtime.tokenizer`: the same tokens and lengths
    exactly, probability and attention within `tolerance`. Raises ParityError at the first text
    whose tokens differ (naming it) or naming the output beyond the tolerance; returns the figures."""
    import onnxruntime as ort

    options = {"providers": ["CPUExecutionProvider"]}
    text_session, token_session = (
        ort.InferenceSession(text_graph, **options),
        ort.InferenceSession(token_graph, **options),
    )
    deltas = {"probability": 0.0, "attention": 0.0}
    for start in range(0, len(texts), batch):
        rows = list(texts[start : start + batch])
        ids, lengths = tokenizer.encode(rows)
        got = _run(text_session, rows)
        for i, text in enumerate(rows):
            if list(got["tokens"][i, : got["lengths"][i]]) != tokenizer.tokenize(text):
                raise ParityError(
                    f"text graph: the tokens of text {start + i + 1} differ from runtime.tokenizer's: {text[:200]!r}"
                )
        if not np.array_equal(got["lengths"], lengths) or got["attention"].shape != ids.shape:
            raise ParityError(
                f"text graph: lengths {got['lengths'].tolist()[:8]} or width differ from runtime.tokenizer's "
                f"(texts {start + 1} to {start + len(rows)})"
            )
        probability, attention = token_session.run(["probability", "attention"], {"tokens": ids})
        for name, expected in (("probability", probability), ("attention", attention)):
            deltas[name] = max(
                deltas[name], float(np.max(np.abs(got[name].astype(np.float64) - expected), initial=0.0))
            )
    failing = [
        f"{name} differs by max |Δ| = {delta:.3g} > {tolerance:g}"
        for name, delta in deltas.items()
        if not np.isfinite(delta) or delta > tolerance
    ]
    if failing:
        raise ParityError("text graph parity: " + "; ".join(failing))
    return {f"max_abs_{name}": delta for name, delta in deltas.items()} | {"tolerance": tolerance, "rows": len(texts)}


def gate_texts(tokenizer: Tokenizer) -> list[str]:
    """The export's parity texts, plus what the compiled tokenizer must get right: case, breaks,
    punctuation, apostrophes, scripts, and a text beyond max_len (truncation side)."""
    words = tokenizer.vocab[:50] or ["x"]
    long = " ".join(
        f"{words[i % len(words)]}{'<br />' if i % 7 == 0 else ''}" for i in range(tokenizer.spec.max_len + 40)
    )
    return parity_texts(tokenizer) + [
        "A GREAT film!<br />Not bad, isn't it? Café 한국어",
        "ONE<BR>two<br/>three<br  />four",
        "don't 'quoted' a''b",
        "İstanbul ΟΔΟΣ Straße ǅ 𐐀",
        "10/10 — ½ ² ① _x_ 👍🏽 ❤️",
        long,
        "<br />",
        "",
    ]


# === Bundles ===
def add_text_graph(
    folder: str | Path,
    texts: Sequence[str] = (),
    lowercase_mapping: str | None = None,
    log: Callable[[str], None] = print,
) -> dict:
    """Build `model_text.onnx` from a bundle's tokenizer and model.onnx, gate it on parity (the gate
    texts and `texts`), write it and declare it in the manifest with its sha256. Returns the manifest.
    `lowercase_mapping="simple"` first declares the bundle's lowercasing simple (what makes a
    lowercasing bundle compilable): tokens change only for texts holding "İ" or a word-final "Σ"."""
    folder = Path(folder)
    bundle = Bundle.load(folder)
    if bundle.task != "sentiment":
        raise TextGraphError(f"{folder}: a {bundle.task} bundle; text graphs are built for sentiment classifiers")
    tokenizer, before = bundle.tokenizer, bundle.tokenizer.spec.lowercase_mapping
    if lowercase_mapping and lowercase_mapping != before:
        tokenizer = Tokenizer(replace(tokenizer.spec, lowercase_mapping=lowercase_mapping), tokenizer.vocab)
    reason = refusal(tokenizer.spec)
    if reason:
        raise TextGraphError(f"{folder}: no text graph: {reason}")
    token_graph = bundle.graph_bytes("model")
    data = build_text_graph(onnx.load_from_string(token_graph), tokenizer).SerializeToString()
    parity = check_text_parity(data, token_graph, tokenizer, gate_texts(tokenizer) + list(texts))
    log(
        f"text graph parity: max |Δprobability| = {parity['max_abs_probability']:.2e}, max |Δattention| = "
        f"{parity['max_abs_attention']:.2e} (tolerance {parity['tolerance']:g}, {parity['rows']} texts) OK"
    )
    staged = folder / f".{FILE}.partial"
    staged.write_bytes(data)
    staged.replace(folder / FILE)
    manifest = json.loads((folder / MANIFEST).read_text(encoding="utf-8"))
    if tokenizer is not bundle.tokenizer:
        manifest["tokenizer"]["spec"]["lowercase_mapping"] = lowercase_mapping
        manifest["data"]["lowercase_mapping_changed"] = f"{before} -> {lowercase_mapping} (attn-export text-graph)"
        log(
            f"{folder}: tokenizer lowercase_mapping {before} -> {lowercase_mapping}: tokens change only for texts "
            "holding 'İ' (U+0130) or a word-final 'Σ' (U+03A3)"
        )
    manifest["graphs"][ROLE] = {
        "file": FILE,
        "sha256": sha256_of(folder / FILE),
        **{k: v for k, v in CONTRACT.items() if k != "file"},
    }
    manifest.setdefault("parity", {})[ROLE] = parity
    write_manifest(folder, manifest)
    log(f"wrote {folder / FILE} ({len(data) / 1e6:.1f} MB) and declared it in {folder / MANIFEST}")
    return manifest


# === The mobile format ===
ORT_FILE, OPERATORS_FILE = "model_text.ort", "required_operators.config"


def write_ort_format(folder: str | Path, log: Callable[[str], None] = print) -> dict:
    """`model_text.ort` (ONNX Runtime's flatbuffer format, for the mobile and minimal builds) and
    `required_operators.config` (the ops a reduced build must hold), from the bundle's text graph, by
    `onnxruntime.tools.convert_onnx_models_to_ort`; gated on parity with model_text.onnx, recorded in the
    manifest (`ort_format`) with its sha256. Returns that record."""
    import subprocess
    import sys
    import tempfile

    folder = Path(folder)
    bundle = Bundle.load(folder)
    if ROLE not in bundle.manifest["graphs"]:
        raise TextGraphError(f"{folder}: no text graph to convert (attn-export text-graph {folder} adds one)")
    with tempfile.TemporaryDirectory(prefix=".ort-", dir=folder) as staging:
        source = Path(staging) / FILE
        source.write_bytes(bundle.graph_bytes(ROLE))
        done = subprocess.run([sys.executable, "-m", "onnxruntime.tools.convert_onnx_models_to_ort", str(source),
                               "--output_dir", str(Path(staging) / "out"), "--optimization_style", "Fixed"],
                              capture_output=True, text=True)
        converted = Path(staging) / "out" / ORT_FILE
        if done.returncode != 0 or not converted.is_file():
            last = (done.stderr.strip().splitlines() or ["no output"])[-1]
            raise TextGraphError(f"{folder}: convert_onnx_models_to_ort failed ({last[:200]})")
        parity = check_ort_parity(converted.read_bytes(), bundle.graph_bytes(ROLE), gate_texts(bundle.tokenizer))
        converted.replace(folder / ORT_FILE)
        (Path(staging) / "out" / "model_text.required_operators.config").replace(folder / OPERATORS_FILE)
    record = {"file": ORT_FILE, "sha256": sha256_of(folder / ORT_FILE), "bytes": (folder / ORT_FILE).stat().st_size,
              "required_operators": OPERATORS_FILE, "parity": parity}
    manifest = json.loads((folder / MANIFEST).read_text(encoding="utf-8"))
    manifest["ort_format"] = record
    write_manifest(folder, manifest)
    log(f"wrote {folder / ORT_FILE} ({record['bytes'] / 1e6:.1f} MB) and {folder / OPERATORS_FILE}; parity with "
        f"{FILE}: max |Δprobability| = {parity['max_abs_probability']:.2e} OK")
    return record


def check_ort_parity(ort_graph: bytes, text_graph: bytes, texts: Sequence[str], tolerance: float = TOLERANCE) -> dict:
    """The .ort graph against the text graph it came from: same tokens, outputs within `tolerance`."""
    import onnxruntime as ort

    sessions = [ort.InferenceSession(data, providers=["CPUExecutionProvider"]) for data in (ort_graph, text_graph)]
    got, expected = (_run(session, texts) for session in sessions)
    if not (np.array_equal(got["tokens"], expected["tokens"]) and np.array_equal(got["lengths"], expected["lengths"])):
        raise ParityError("model_text.ort: its tokens differ from model_text.onnx's")
    deltas = {name: float(np.max(np.abs(got[name] - expected[name]), initial=0.0))
              for name in ("probability", "attention")}
    failing = [f"{name} by {delta:.3g}" for name, delta in deltas.items() if not delta <= tolerance]
    if failing:
        raise ParityError(f"model_text.ort differs from model_text.onnx beyond {tolerance:g}: {', '.join(failing)}")
    return {f"max_abs_{name}": delta for name, delta in deltas.items()} | {"tolerance": tolerance, "rows": len(texts)}
