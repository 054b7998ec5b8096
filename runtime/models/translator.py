"""Translator over a translation bundle: encoder.onnx once per batch, decoder_step.onnx per step.

Greedy and beam search are one decode loop (`runtime.models.search.search`) driven by the decoder graph
as a step function. Scores are length-normalised log-probabilities: the sum of the chosen tokens'
log-probabilities (the end token included) divided by their number. Text comes back through the
target tokenizer (`decode_text`: SentencePiece detokenization, or words joined around punctuation).
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Sequence

import numpy as np

from runtime.bundle import Bundle, BundleError, check_vocabulary, tokenizer_from_manifest
from runtime.models.copying import (
    NumberCopier,
    copy_spans,
    digit_tokens,
    number_word_values,
    source_spans,
    target_words,
    word_continuing_tokens,
)
from runtime.models.search import search
from runtime.models.segment import segments
from runtime.tokenizer import OOV_ID, WORD_START, Tokenizer, detokenize, join_pieces, text_list  # noqa: F401  (detokenize: re-exported)

START, END = "<s>", "</s>"
MAX_BEAM = 32  # widest beam a command or request may ask for
MAX_TARGET_TOKENS = 1_000  # longest --max-length
RETRIES = 2  # decodes again for numbers still missing (one number placed per pass)


def _label(token: str) -> str:
    """A token for a heatmap: without SentencePiece's word-start marker; a lone marker is a visible space."""
    return "␣" if token == WORD_START else Tokenizer.readable(token)


@dataclass
class Translation:
    text: str
    tokens: list[str]  # target tokens (words or pieces), the end token excluded
    score: float  # length-normalised log-probability
    source_tokens: list[str]
    attention: np.ndarray | None = None  # (target steps incl. end, source tokens) when asked for
    ids: list[int] = field(default_factory=list)  # target ids, the end token excluded
    source_ids: list[int] = field(default_factory=list)  # the ids the encoder read (OOV_ID: a token it cannot read)
    segments: int = 1  # parts translated one by one (sentences or windows; runtime.models.segment)
    windowed: bool = False  # a sentence longer than the model's limit was cut into windows of words
    copied: list[dict] = field(default_factory=list)  # spans copied from the source (runtime.models.copying)
    missing: list[str] = field(default_factory=list)  # source numbers / unreadable words the translation lacks
    source_words: list[list[int]] | None = None  # source token indices per word (None: one token, one word)
    target_words: list[list[int]] | None = None  # target token indices per word

    @property
    def oov(self) -> int:
        """Source tokens the model cannot read, plus target tokens it could not spell."""
        return self.source_ids.count(OOV_ID) + self.tokens.count("<oov>")

    def word_attention(self) -> tuple[list[str], list[str], np.ndarray]:
        """(target words then </s>, source words, weights) for a heatmap people read: pieces joined
        into words ("▁M" + "y" is one "My" column), a source word's column the sum of its pieces'
        (the attention it got), a target word's row the mean of its pieces' rows (each row sums to 1)."""
        columns = self.source_words or [[i] for i in range(len(self.source_tokens))]
        rows = self.target_words or [[i] for i in range(len(self.tokens))]
        weights = self.attention
        if weights is None:
            weights = np.zeros((len(self.tokens) + 1, len(self.source_tokens)))
        steps = rows + [[len(self.tokens)]]  # the end token's row stays its own
        merged = np.array([[weights[row][:, column].sum(axis=1).mean() for column in columns] for row in steps])
        merged = merged.reshape(len(steps), len(columns))
        return ([join_pieces(self.tokens[i] for i in row) for row in rows] + [END],
                [join_pieces(self.source_tokens[i] for i in column) for column in columns], merged)

    @property
    def source_labels(self) -> list[str]:
        """Source tokens for people (heatmap columns): SentencePiece's word-start marker removed."""
        return [_label(t) for t in self.source_tokens]

    @property
    def target_labels(self) -> list[str]:
        """Target tokens for people, then the end token (heatmap rows, one per attention row)."""
        return [_label(t) for t in self.tokens] + [END]


class Translator:
    """Translates sentences with a translation bundle. Thread-safe like the Classifier."""

    def __init__(self, bundle: Bundle, provider: str = "auto", threads: int = 0,
                 batch_size: int = 64, session_options=None):
        if bundle.task != "translation":
            raise BundleError(f"{bundle.path}: task is {bundle.task!r}, a Translator needs a 'translation' bundle")
        self.bundle = bundle
        self.source_tokenizer = bundle.tokenizer
        self.target_tokenizer = tokenizer_from_manifest(bundle.manifest["target_tokenizer"],
                                                        f"{bundle.path}: field 'target_tokenizer'")
        self.start_id = self.target_tokenizer.id_of(START)
        self.end_id = self.target_tokenizer.id_of(END)
        self.max_length = bundle.manifest["max_target_len"]  # validated by the schema, no default here
        self.batch_size = batch_size
        self.digits = digit_tokens(self.target_tokenizer.vocab)
        self.continuing = word_continuing_tokens(self.target_tokenizer.vocab)
        self.number_words = number_word_values(self.target_tokenizer.vocab)
        self._encoder, self.provider = bundle.open_session("encoder", provider, threads, session_options)
        check_vocabulary(self._encoder, bundle.graph_path("encoder"), "source", "states",
                         self.source_tokenizer.vocab_size)
        self._step, _ = bundle.open_session("decoder_step", provider, threads, session_options)

    def translate(self, sentences: str | Sequence[str], beam_size: int = 4, max_length: int | None = None,
                  return_attention: bool = False, copy: bool = True) -> list[Translation] | Translation:
        """Translate each sentence (beam_size 1 = greedy); one bare str is one sentence and gets one
        Translation. A source longer than the model's limit is split into sentences, then windows
        (runtime.models.segment), each translated and the results joined; with `copy`, numbers and
        unreadable words are copied through (runtime.models.copying). A sentence with no tokens (empty,
        blank) gets an empty translation without decoding."""
        sentences, single = text_list(sentences, "sentences")
        results = self._translate(sentences, beam_size, max_length, return_attention, copy)
        for result in results:  # for heatmaps people read (Translation.word_attention)
            result.source_words = self.source_tokenizer.word_groups(result.source_tokens)
            result.target_words = self.target_tokenizer.word_groups(result.tokens)
        return results[0] if single else results

    def _translate(self, sentences: list[str], beam_size: int, max_length: int | None, return_attention: bool,
                   copy: bool) -> list[Translation]:
        if beam_size < 1:
            raise ValueError(f"beam size must be >= 1, got {beam_size}")
        if max_length is not None and (not isinstance(max_length, int)
                                       or isinstance(max_length, bool) or max_length < 1):
            raise ValueError(f"max_length must be a whole number >= 1 (or None for the bundle's), got {max_length!r}")
        limit, parts, owners, windowed = self.source_tokenizer.spec.max_len, [], [], []
        for row, sentence in enumerate(sentences):
            pieces, cut = segments(sentence, limit, lambda text: len(self.source_tokenizer.split(text)))
            parts += pieces
            owners += [row] * len(pieces)
            windowed.append(cut)
        decoded = self.translate_parts(parts, beam_size, max_length or self.max_length, return_attention or copy, copy)
        if copy:
            decoded = [self.with_copies(part, translation) for part, translation in zip(parts, decoded)]
            for _ in range(RETRIES):
                decoded = self.place_missing(parts, decoded, beam_size, max_length or self.max_length)
        grouped: list[list[Translation]] = [[] for _ in windowed]
        for row, translation in zip(owners, decoded):
            grouped[row].append(translation)
        return [joined(group, cut, return_attention) for group, cut in zip(grouped, windowed)]

    def translate_parts(self, sentences: list[str], beam_size: int, max_length: int, return_attention: bool,
                        copy_numbers: bool = False, prefixes: list | None = None) -> list[Translation]:
        """Each sentence as the model reads it (at most max_len tokens); batches sorted by source length.
        With `copy_numbers`, the decoder writes the source's numbers (runtime.models.copying.NumberCopier),
        after `prefixes[row]` (target ids, the number they end with) where given."""
        ids, lengths = (self.source_tokenizer.encode(sentences) if sentences
                        else (np.zeros((0, 1), np.int32), np.zeros(0, np.int32)))
        results: list[Translation | None] = [None] * len(sentences)
        for row in np.flatnonzero(lengths == 0):  # nothing to translate: an empty translation, never an invention
            results[row] = Translation("", [], 0.0, [], np.zeros((1, 0), np.float32) if return_attention else None)
        order = np.argsort(lengths, kind="stable")
        order = order[lengths[order] > 0]
        for start in range(0, len(order), self.batch_size):
            rows = order[start : start + self.batch_size]
            width = max(int(lengths[rows].max()), 1)
            numbers = [self.number_targets(sentences[row], ids[row, : lengths[row]].tolist()) for row in rows] \
                if copy_numbers else None
            forced = [prefixes[row] for row in rows] if prefixes else None
            decoded = self.decode(np.ascontiguousarray(ids[rows, :width]), beam_size, max_length, return_attention,
                                  numbers, forced)
            for row, hypothesis in zip(rows, decoded):
                source_tokens = self.source_tokenizer.tokenize(sentences[row])
                attention = hypothesis.attention[:, : len(source_tokens)] if return_attention else None
                tokens = self.target_tokenizer.decode(hypothesis.ids)
                results[row] = Translation(self.target_tokenizer.decode_text(hypothesis.ids), tokens,
                                           hypothesis.score, source_tokens, attention, hypothesis.ids,
                                           ids[row, : lengths[row]].tolist())
        return results

    def with_copies(self, source: str, translation: Translation) -> Translation:
        """`translation` with the source's numbers and unreadable words copied in (runtime.models.copying)."""
        spans = source_spans(self.source_tokenizer.normalize(source), translation.source_tokens, translation.source_ids)
        if not spans or translation.attention is None:
            return translation
        sentencepiece = self.target_tokenizer.spec.mode == "sentencepiece"
        groups = target_words(translation.tokens, sentencepiece)
        words = [self.target_tokenizer.decode_text([translation.ids[i] for i in group]) for group in groups]
        attention = np.stack([translation.attention[group].sum(0) for group in groups]) if groups else np.zeros((0, 0))
        copied_words, copied, missing = copy_spans(words, list(map(len, groups)), attention, spans)
        text = translation.text
        if copied:
            text = " ".join(copied_words) if sentencepiece else detokenize(copied_words)
        written = [{"source": number[3], "replaced": None, "kind": "number"}  # by the decoder (NumberCopier)
                   for number in self.number_targets(source, translation.source_ids)
                   if _holds(translation.ids, number[1]) or _holds(translation.ids, number[2])]
        return replace(translation, text=text, copied=written + copied, missing=missing)

    def decode(self, source: np.ndarray, beam_size: int, max_length: int, attention: bool = False, numbers=None,
               prefixes=None):
        """Source ids (B, S) -> the best Hypothesis per row (runtime.models.search over the decoder graph).
        `numbers[row]`: the row's numbers to write through, `prefixes[row]` (NumberCopier)."""
        states, h, c = self._encoder.run(["states", "h", "c"], {"source": source})
        step, state = self.step_function(states, source != 0), (h, c)
        if numbers is not None and any(numbers):
            copier = NumberCopier(step, numbers, self.digits, self.target_tokenizer.id_of(WORD_START), prefixes,
                                  self.continuing, self.number_words)
            step, state = copier, copier.initial(state, len(source))
        return search(step, state, len(source), self.start_id, self.end_id, max_length, beam_size, attention)

    def place_missing(self, parts: list[str], decoded: list[Translation], beam_size: int,
                      max_length: int) -> list[Translation]:
        """Parts whose translation lacks a source number decoded again, the number written where the
        first pass attended to it most (the tokens before kept); kept if fewer numbers are missing."""
        retry = {i: self.missing_prefix(parts[i], decoded[i]) for i, t in enumerate(decoded) if t.missing}
        retry = {i: prefix for i, prefix in retry.items() if prefix is not None}
        if not retry:
            return decoded
        again = self.translate_parts([parts[i] for i in retry], beam_size, max_length, True, True, list(retry.values()))
        decoded = list(decoded)
        for i, translation in zip(retry, again):
            translation = self.with_copies(parts[i], translation)
            if len(translation.missing) < len(decoded[i].missing):
                decoded[i] = translation
        return decoded

    def missing_prefix(self, part: str, translation: Translation) -> tuple[list[int], int] | None:
        """(the target ids up to the word that attended most to the first missing number, then the
        number's; its index) or None."""
        numbers = self.number_targets(part, translation.source_ids)
        index = next((i for i, number in enumerate(numbers) if number[3] in translation.missing), None)
        if index is None or translation.attention is None or not translation.ids:
            return None
        positions, target, after_space, _ = numbers[index]
        step = int(translation.attention[: len(translation.ids), positions].sum(1).argmax())
        pieces = self.target_tokenizer.spec.mode == "sentencepiece"  # a word vocabulary: each token a word
        while pieces and step > 0 and not translation.tokens[step].startswith(WORD_START):  # back to the word's start
            step -= 1
        kept = translation.ids[:step]
        return kept + (after_space if kept and kept[-1] == self.target_tokenizer.id_of(WORD_START) else target), index

    def number_targets(self, sentence: str, ids: list[int]) -> list[tuple[list[int], list[int], list[int], str]]:
        """The source's numbers: (their source token positions, the target ids that write them, the
        same after a lone word-start token, the number); a number the target vocabulary cannot spell
        is left to the model."""
        numbers, vocabulary = [], self.target_tokenizer
        source = self.source_tokenizer
        for span in source_spans(source.normalize(sentence), source.tokenize(sentence), ids):
            pieces = vocabulary.split(" " + span.text)
            target = [vocabulary.id_of(piece) for piece in pieces]
            if span.kind != "number" or not target or OOV_ID in target:
                continue
            joined = pieces[0][len(WORD_START):] if pieces[0].startswith(WORD_START) else pieces[0]
            after_space = target[1:] if not joined else [vocabulary.id_of(joined)] + target[1:]
            numbers.append((span.tokens, target, target if OOV_ID in after_space or not after_space else after_space,
                            span.text))
        return numbers

    def step_function(self, states: np.ndarray, mask: np.ndarray):
        """decoder_step.onnx as a search step; a row's encoder states are gathered by its sentence,
        again only when the live rows' sentences change."""
        cache: dict = {}

        def step(previous, sentence, state):
            if cache.get("sentence") is None or not np.array_equal(cache["sentence"], sentence):
                cache.update(sentence=sentence, states=states[sentence], mask=mask[sentence])
            h, c = state
            log_probs, h, c, weights = self._step.run(
                ["log_probs", "next_h", "next_c", "attention"],
                {"previous": previous, "h": h, "c": c, "states": cache["states"], "source_mask": cache["mask"]},
            )
            return log_probs, (h, c), weights

        return step


def _holds(ids: list[int], run: list[int]) -> bool:
    """Whether `run` occurs in `ids`, token for token."""
    return any(ids[i : i + len(run)] == run for i in range(len(ids) - len(run) + 1))


def joined(parts: list[Translation], windowed: bool, attention: bool) -> Translation:
    """One row's translation from its parts: texts joined by a space, tokens and source tokens one
    after the other, the score weighted by each part's length, attention block by block."""
    if len(parts) == 1:
        return parts[0] if attention else replace(parts[0], attention=None)
    steps = [len(part.tokens) + 1 for part in parts]
    matrix = None
    if attention:  # (target steps incl. one end, source tokens): each part's end row but the last dropped
        matrix = np.zeros((sum(steps) - len(parts) + 1, sum(len(part.source_tokens) for part in parts)), np.float32)
        row = column = 0
        for part, count in zip(parts, steps):
            block = part.attention[: count - 1] if part is not parts[-1] else part.attention
            matrix[row : row + len(block), column : column + block.shape[1]] = block
            row, column = row + count - 1, column + block.shape[1]
    return Translation(" ".join(part.text for part in parts if part.text),
                       [token for part in parts for token in part.tokens],
                       float(np.dot([part.score for part in parts], steps) / sum(steps)),
                       [token for part in parts for token in part.source_tokens], matrix,
                       [i for part in parts for i in part.ids], [i for part in parts for i in part.source_ids],
                       segments=len(parts), windowed=windowed,
                       copied=[c for part in parts for c in part.copied],
                       missing=[m for part in parts for m in part.missing])
