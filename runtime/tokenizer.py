"""The one tokenizer: the trainer vectorizes with it and the runtime serves with it.

A `Tokenizer` is a `TokenizerSpec` (how text becomes tokens) plus a vocabulary (token -> id).
Both serialize to JSON, never pickle, so a bundle carries exactly what produced its training data.

Two modes split text into tokens:
  word           regex words (Unicode-aware), punctuation stripped or kept as tokens
  sentencepiece  a SentencePiece unigram model trained from the data (for agglutinative languages
                 such as Korean, where whitespace words explode the vocabulary); the model travels
                 inside the JSON as base64 of its protobuf bytes
Either way the tokens are looked up in the same vocabulary table, so ids are identical wherever the
JSON is loaded.

Ids: 0 is padding, 1 is out-of-vocabulary, the vocabulary starts at 2 in descending frequency.
`encode` returns right-padded int32 ids of shape (batch, longest row in the batch, at most
`max_len`) and the int32 length of each row.
"""

from __future__ import annotations

import base64
import json
import re
from dataclasses import asdict, dataclass, fields
from itertools import chain
from pathlib import Path
from typing import Iterable, Sequence

import numpy as np

from runtime.errors import TokenizerError

PAD_ID = 0
OOV_ID = 1
FORMAT = "attn-tokenizer/1"
_TOKENIZER_FIELDS = {"format", "spec", "vocab", "sentencepiece_model"}  # a tokenizer JSON's top level

MODES = ("word", "sentencepiece")
WORD_START = "\u2581"  # SentencePiece's word-start marker
_NO_SPACE_BEFORE = re.compile(r" ([.,!?;:%)\]}'»])")
_NO_SPACE_AFTER = re.compile(r"([¿¡(\[{«]) ")
_HTML_BREAK = re.compile(r"<br\s*/?>", re.IGNORECASE)
# lowercase_mapping "simple": one code point to one (Unicode's simple lowercase mapping), what ONNX
# Runtime's StringNormalizer computes. str.lower() is the full mapping: it differs only on U+0130
# ("İ" -> "i" + U+0307) and the final sigma (U+03A3 -> U+03C2 at a word's end); mapping those two
# first makes str.lower() the simple mapping.
LOWERCASE_MAPPINGS = ("full", "simple")
_SIMPLE_LOWER = str.maketrans({"\u0130": "i", "\u03a3": "\u03c3"})
# join_clitics: Penn-Treebank-tokenized text (SST-2: "does n't", "it 's", "-lrb-") and raw text
# ("doesn't", "it's", "(") become the same string before splitting, so one model can train on both
# and serve raw text. Curly apostrophes count as straight ones ("doesn’t" = "doesn't").
_CURLY_APOSTROPHE = re.compile("[\u2019\u2018\u02bc]")
_DETACHED_CLITIC = re.compile(r"(?<=\w)\s+(n't|'s|'re|'ve|'m|'ll|'d)\b", re.IGNORECASE)
_PTB_BRACKETS = {"-lrb-": "(", "-rrb-": ")", "-lsb-": "[", "-rsb-": "]", "-lcb-": "{", "-rcb-": "}"}
# ASCII case only: with Unicode case folding "-lſb-" (long s) would match and miss the table.
_PTB_BRACKET = re.compile("|".join(map(re.escape, _PTB_BRACKETS)), re.IGNORECASE | re.ASCII)
# split_negation: the negating clitic leaves its word the Penn-Treebank way ("doesn't" -> "does n't",
# "can't" -> "ca n't", "won't" -> "wo n't", curly apostrophes too), so "n't" is one shared token
# instead of a separate vocabulary word per negated verb.
# Treebank text already has it apart ("does n't"; a detached curly "n’t" is straightened too). The
# space after keeps "n't" whole before a further clitic ("shouldn't've" -> "should n't 've").
# Case spelled out, not IGNORECASE: case folding would also bend the classes around it (the JS copy
# of this pattern would then depend on the browser's Unicode version).
NEGATION_TOKEN = "n't"  # what split_negation writes (lower-cased); negation_as_not reads it as "not"
_NEGATION = re.compile(r"(?<![^\w\s])([nN])['\u2019\u2018\u02bc]([tT])(?!\w)")
# Words keep inner apostrophes ("don't"); \w is Unicode-aware (accents, Hangul, digits).
_WORD = r"\w+(?:'\w+)*"
_PATTERNS = {
    "strip": re.compile(_WORD),  # punctuation, symbols and emoji separate words and vanish
    "keep": re.compile(_WORD + r"|[^\w\s]"),  # each punctuation mark / emoji is its own token
}


@dataclass(frozen=True)
class TokenizerSpec:
    """How text becomes tokens. `truncation` says which side loses tokens beyond `max_len`:
    "pre" drops from the start (keeps the ending, like Keras' pad_sequences), "post" from the end.
    `join_clitics` maps treebank-tokenized text to raw text ("do n't" -> "don't", "-lrb-" -> "("),
    so data such as SST-2 and user text give the same tokens (off by default: older bundles keep
    exactly the tokens they were trained on). `split_negation` splits "n't" off its word ("doesn't" ->
    "does n't", "can't" -> "ca n't") so negation is one token; with or without `join_clitics`, raw and
    treebank text then give the same tokens (off by default, for the same reason). `lowercase_mapping`
    says how `lowercase` works: "full" is Python's str.lower() (the default: older bundles keep their
    tokens), "simple" maps each code point to one (what a text graph computes in ONNX Runtime; it
    differs from "full" only on "İ" and a word-final "Σ"). `negation_as_not` (needs `split_negation`) looks
    the token "n't" up as "not": the two spellings of the negation share one id and one embedding, so
    "didn't hate" reads as "did not hate"; the tokens themselves stay as written ("n't" is shown, and
    a fitted vocabulary counts it as "not")."""

    max_len: int = 500
    mode: str = "word"
    lowercase: bool = True
    html_breaks: bool = True
    punctuation: str = "strip"
    truncation: str = "pre"
    pad_id: int = PAD_ID
    oov_id: int = OOV_ID
    join_clitics: bool = False
    split_negation: bool = False
    lowercase_mapping: str = "full"
    negation_as_not: bool = False

    def __post_init__(self) -> None:
        if self.mode not in MODES:
            raise TokenizerError(f"tokenizer mode must be one of {', '.join(MODES)}, got {self.mode!r}")
        if self.max_len < 1:
            raise TokenizerError(f"tokenizer max_len must be >= 1, got {self.max_len}")
        if self.punctuation not in _PATTERNS:
            raise TokenizerError(f"tokenizer punctuation must be one of {sorted(_PATTERNS)}, got {self.punctuation!r}")
        if self.truncation not in ("pre", "post"):
            raise TokenizerError(f"tokenizer truncation must be 'pre' or 'post', got {self.truncation!r}")
        if self.lowercase_mapping not in LOWERCASE_MAPPINGS:
            raise TokenizerError(f"tokenizer lowercase_mapping must be one of {', '.join(LOWERCASE_MAPPINGS)}, "
                                 f"got {self.lowercase_mapping!r}")
        if (self.pad_id, self.oov_id) != (PAD_ID, OOV_ID):
            raise TokenizerError(f"tokenizer pad/oov ids must be {PAD_ID}/{OOV_ID}")
        if self.negation_as_not and not (self.split_negation and self.mode == "word"):
            raise TokenizerError("tokenizer negation_as_not needs split_negation in word mode (it looks the "
                                 "split-off \"n't\" up as \"not\")")

    @classmethod
    def from_dict(cls, data: dict) -> "TokenizerSpec":
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(data) - known)
        if unknown:
            raise TokenizerError(f"tokenizer spec has unknown field(s) {unknown}; known: {sorted(known)}")
        return cls(**data)


class Tokenizer:
    """Spec + vocabulary. Fitted by `trainer.tokenizer_fit.fit_tokenizer`, loaded from JSON here."""

    def __init__(self, spec: TokenizerSpec, vocab: Sequence[str], sentencepiece_model: bytes | None = None):
        self.spec = spec
        self._sentencepiece_model = sentencepiece_model
        self._sp = None
        if spec.mode == "sentencepiece":
            if not sentencepiece_model:
                raise TokenizerError("tokenizer mode 'sentencepiece' needs its model")
            self._sp = _load_sentencepiece(sentencepiece_model)
            vocab = [self._sp.id_to_piece(i) for i in range(2, self._sp.get_piece_size())]
        self.vocab = list(vocab)  # vocab[i] has id i + 2
        self._index = {token: i + 2 for i, token in enumerate(self.vocab)}
        if len(self._index) != len(self.vocab):
            raise TokenizerError("tokenizer vocabulary holds duplicate tokens")
        if spec.negation_as_not:  # "n't" takes the id of "not" (OOV where "not" is not in the vocabulary)
            self._index[NEGATION_TOKEN] = self._index.get("not", OOV_ID)
        self._pattern = _PATTERNS[spec.punctuation]

    def lookup(self) -> dict[str, int]:
        """Every token with an id and its id: the vocabulary (id = position + 2), plus "n't" -> the id of
        "not" under `negation_as_not`. What another implementation's token-to-id table must hold."""
        return dict(self._index)

    def id_of(self, token: str) -> int:
        """The id of a vocabulary token (OOV id if absent)."""
        return self._index.get(token, OOV_ID)

    @property
    def vocab_size(self) -> int:
        """Number of ids, padding and OOV included (the embedding's input dimension)."""
        return len(self.vocab) + 2

    # === Text -> tokens -> ids ===
    def _normalize(self, text: str) -> str:
        if not isinstance(text, str):
            raise TypeError(f"tokenizer expects str, got {type(text).__name__}")
        if self.spec.lowercase:
            text = (text.translate(_SIMPLE_LOWER) if self.spec.lowercase_mapping == "simple" else text).lower()
        if self.spec.html_breaks:
            text = _HTML_BREAK.sub(" ", text)
        if self.spec.join_clitics:
            text = join_treebank(_CURLY_APOSTROPHE.sub("'", text))
        if self.spec.split_negation:
            text = _NEGATION.sub(r" \1'\2 ", text)
        return text

    def _split(self, text: str) -> list[str]:
        text = self._normalize(text)
        if self._sp is not None:
            return self._sp.encode(text, out_type=str)
        return self._pattern.findall(text)

    def normalize(self, text: str) -> str:
        """The text the tokens are cut from (what a SentencePiece model is trained on)."""
        return self._normalize(text)

    def split(self, text: str) -> list[str]:
        """Every token of `text`, untruncated (what a word vocabulary is counted over)."""
        return self._split(text)

    @staticmethod
    def readable(token: str) -> str:
        """A token for people: SentencePiece's word-start marker removed."""
        return token.lstrip(WORD_START) or token

    def word_groups(self, tokens: Sequence[str]) -> list[list[int]]:
        """Indices of `tokens` grouped into the words people read. Word mode: one token, one word.
        SentencePiece: a piece starting with the marker starts a word ("▁M", "y" -> "My"; a lone
        "▁" joins the piece after it), the others continue the word before."""
        if self._sp is None:
            return [[i] for i in range(len(tokens))]
        return group_pieces(tokens)

    def words(self, tokens: Sequence[str], weights: Sequence[float]) -> tuple[list[str], list[float]]:
        """(words, attention on each word) for display: a word's weight is the sum of its pieces'
        (attention *to* a word, as Clark et al. 2019 aggregate BERT's over word pieces)."""
        groups = self.word_groups(tokens)
        return ([join_pieces(tokens[i] for i in group) for group in groups],
                [float(sum(weights[i] for i in group)) for group in groups])

    def tokenize(self, text: str) -> list[str]:
        """The tokens the model sees for `text`, after truncation to `max_len`."""
        return self._truncate(self._split(text))

    def _truncate(self, tokens: list[str]) -> list[str]:
        if len(tokens) > self.spec.max_len:
            tokens = tokens[-self.spec.max_len :] if self.spec.truncation == "pre" else tokens[: self.spec.max_len]
        return tokens

    def encode(self, texts: Sequence[str]) -> tuple[np.ndarray, np.ndarray]:
        """Right-padded ids (batch, time) and lengths (batch,), both int32.
        time = the longest row in this batch (at least 1, at most max_len); empty texts have length 0."""
        return self.encode_counted(texts)[:2]

    def encode_counted(self, texts: Sequence[str]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """`encode` plus each text's token count before truncation (int32; > lengths = truncated)."""
        get = self._index.get
        splits = [self._split(text) for text in texts]
        totals = np.fromiter(map(len, splits), dtype=np.int32, count=len(splits))
        rows = [[get(token, OOV_ID) for token in self._truncate(tokens)] for tokens in splits]
        lengths = np.fromiter(map(len, rows), dtype=np.int32, count=len(rows))
        width = max(int(lengths.max(initial=0)), 1)
        ids = np.zeros((len(rows), width), dtype=np.int32)
        ids[np.arange(width) < lengths[:, None]] = np.fromiter(
            chain.from_iterable(rows), dtype=np.int32, count=int(lengths.sum())
        )
        return ids, lengths, totals

    def decode(self, ids: Iterable[int]) -> list[str]:
        """Ids back to vocabulary tokens (`<oov>` for 1); padding is skipped."""
        out = []
        for i in ids:
            i = int(i)
            if i == PAD_ID:
                continue
            out.append("<oov>" if i == OOV_ID else self.vocab[i - 2])
        return out

    def decode_text(self, ids: Iterable[int]) -> str:
        """Ids back to text: SentencePiece's detokenizer (spaces and case as they were), or in word
        mode the words joined by spaces, none before closing punctuation or after opening."""
        if self._sp is not None:
            return self._sp.decode([int(i) for i in ids if int(i) != PAD_ID])
        return detokenize(self.decode(ids))

    # === JSON ===
    def to_dict(self) -> dict:
        data = {"format": FORMAT, "spec": asdict(self.spec), "vocab": self.vocab}
        if self._sentencepiece_model:
            data["vocab"] = []  # the pieces live in the model
            data["sentencepiece_model"] = base64.b64encode(self._sentencepiece_model).decode("ascii")
        return data

    @classmethod
    def from_dict(cls, data: dict) -> "Tokenizer":
        if not isinstance(data, dict) or data.get("format") != FORMAT:
            found = data.get("format") if isinstance(data, dict) else type(data).__name__
            raise TokenizerError(f"not a tokenizer: expected format {FORMAT!r}, found {found!r}")
        unknown = sorted(set(data) - _TOKENIZER_FIELDS)
        if unknown:  # e.g. a spec option written beside "spec" instead of in it: refused, never ignored
            misplaced = sorted(set(unknown) & {f.name for f in fields(TokenizerSpec)})
            hint = f" ({', '.join(misplaced)} belong(s) in \"spec\")" if misplaced else ""
            raise TokenizerError(f"tokenizer has unknown field(s) {unknown}{hint}; known: {sorted(_TOKENIZER_FIELDS)}")
        model = data.get("sentencepiece_model")
        return cls(TokenizerSpec.from_dict(data["spec"]), data["vocab"], base64.b64decode(model) if model else None)

    def save(self, path: str | Path) -> None:
        Path(path).write_text(json.dumps(self.to_dict(), ensure_ascii=False), encoding="utf-8")

    @classmethod
    def load(cls, path: str | Path) -> "Tokenizer":
        try:
            data = json.loads(Path(path).read_text(encoding="utf-8"))
        except FileNotFoundError:
            raise TokenizerError(f"{path}: tokenizer file not found") from None
        except (json.JSONDecodeError, UnicodeDecodeError) as error:
            raise TokenizerError(f"{path}: not a tokenizer JSON file ({error})") from None
        try:
            return cls.from_dict(data)
        except (ValueError, KeyError, TypeError) as error:  # TokenizerError is a ValueError
            raise TokenizerError(f"{path}: {error}") from None


def join_treebank(text: str) -> str:
    """Penn-Treebank tokenization undone: detached clitics rejoined ("does n't" -> "doesn't", "it 's" ->
    "it's") and bracket names restored ("-lrb-" -> "("). Raw text passes unchanged (apostrophes are not
    straightened here). The `join_clitics` spec applies it after straightening curly apostrophes; the
    trainer applies it to treebank data (SST-2) alone, so a bundle's spec need not carry it."""
    text = _DETACHED_CLITIC.sub(r"\1", text)
    return _PTB_BRACKET.sub(lambda match: _PTB_BRACKETS[match.group(0).lower()], text)


def detokenize(tokens: Sequence[str]) -> str:
    """Word tokens back to text: spaces between words, none before closing punctuation or after opening."""
    return _NO_SPACE_AFTER.sub(r"\1", _NO_SPACE_BEFORE.sub(r"\1", " ".join(tokens)))


# === SentencePiece ===
def group_pieces(pieces: Sequence[str]) -> list[list[int]]:
    """SentencePiece pieces' indices grouped by word (see `Tokenizer.word_groups`)."""
    groups: list[list[int]] = []
    for i, piece in enumerate(pieces):
        starts = piece.startswith(WORD_START) and not (groups and pieces[groups[-1][-1]] == WORD_START)
        if starts or not groups:
            groups.append([i])
        else:
            groups[-1].append(i)
    return groups


def join_pieces(pieces: Iterable[str]) -> str:
    """The word a run of pieces spells, without the marker (a word of markers only shows one)."""
    return "".join(pieces).replace(WORD_START, "") or WORD_START


def text_list(texts, name: str = "texts") -> tuple[list[str], bool]:
    """(the texts as a list, whether `texts` was one bare str). A str is one text, never a sequence
    of characters (as Hugging Face pipelines take it); anything else must be an iterable of str,
    and an item that is not one raises TypeError naming its index."""
    if isinstance(texts, str):
        return [texts], True
    if isinstance(texts, (bytes, bytearray, dict)) or not isinstance(texts, Iterable):
        raise TypeError(f"{name} must be a str or a sequence of str, got {type(texts).__name__}")
    texts = list(texts)
    for index, text in enumerate(texts):
        if not isinstance(text, str):
            raise TypeError(f"{name}[{index}] is {type(text).__name__} {text!r:.40}, expected str")
    return texts, False


def _load_sentencepiece(model: bytes):
    try:
        import sentencepiece
    except ImportError:  # pragma: no cover - it is a dependency; this guards broken environments
        raise ImportError("tokenizer mode 'sentencepiece' needs the sentencepiece package "
                          "(pip install sentencepiece)") from None
    processor = sentencepiece.SentencePieceProcessor(model_proto=model)
    if processor.pad_id() != PAD_ID or processor.unk_id() != OOV_ID:
        raise TokenizerError(f"sentencepiece model must use pad id {PAD_ID} and unknown id {OOV_ID}")
    return processor
