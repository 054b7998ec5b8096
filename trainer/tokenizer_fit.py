"""Fitting the one tokenizer: counting a word vocabulary or training a SentencePiece model.

Fitting happens once, at training time, so it lives here; `runtime.tokenizer` only encodes with
what was fitted (keras-hub's `word_piece_tokenizer.py` / `word_piece_tokenizer_trainer.py` split).
Both produce a `runtime.tokenizer.Tokenizer`, whose JSON a bundle carries.
"""

from __future__ import annotations

import io
from collections import Counter
from dataclasses import replace
from itertools import chain
from typing import Iterable, Sequence

from runtime.tokenizer import NEGATION_TOKEN, OOV_ID, PAD_ID, Tokenizer, TokenizerError, TokenizerSpec


def fit_tokenizer(texts: Iterable[str], vocab_size: int, spec: TokenizerSpec | None = None,
                  reserved: Sequence[str] = (), byte_fallback: bool = False) -> Tokenizer:
    """Word mode: keep the `vocab_size - 2` most frequent tokens (ids 0 and 1 are padding and OOV);
    ties break by the token's text, so the same data always gives the same ids. `reserved` tokens
    (such as "<s>", "</s>") take the first ids, 2, 3, ...; text never splits into them.
    SentencePiece mode: a unigram model of at most `vocab_size` pieces trained on the texts;
    `reserved` become control symbols (ids 2, 3, ...: never produced from text, dropped by
    decoding); `byte_fallback` spells characters outside the pieces as UTF-8 byte pieces, so no
    text needs the OOV id (a target vocabulary that can never produce `<oov>`)."""
    if vocab_size < 3 + len(reserved):
        raise TokenizerError(f"vocab_size must be >= {3 + len(reserved)} (padding, OOV, reserved, one token), "
                             f"got {vocab_size}")
    spec = spec or TokenizerSpec()
    if spec.mode == "sentencepiece":
        return Tokenizer(spec, [], train_sentencepiece(texts, vocab_size, spec, reserved, byte_fallback))
    probe = Tokenizer(spec, [])
    counts = Counter(chain.from_iterable(probe.split(text) for text in texts))
    if spec.negation_as_not and NEGATION_TOKEN in counts:  # looked up as "not": counts as one, takes no slot
        counts["not"] += counts.pop(NEGATION_TOKEN)
    ranked = [token for token, _ in sorted(counts.items(), key=lambda item: (-item[1], item[0]))
              if token not in reserved]
    return Tokenizer(spec, list(reserved) + ranked[: vocab_size - 2 - len(reserved)])


def train_sentencepiece(texts: Iterable[str], vocab_size: int, spec: TokenizerSpec, reserved: Sequence[str] = (),
                        byte_fallback: bool = False) -> bytes:
    """A unigram model over the normalized texts; one thread so the same data gives the same model."""
    import sentencepiece

    normalizer = Tokenizer(replace(spec, mode="word"), [])
    model = io.BytesIO()
    try:
        sentencepiece.SentencePieceTrainer.train(
            sentence_iterator=(line for line in map(normalizer.normalize, texts) if line.strip()),
            model_writer=model,
            vocab_size=vocab_size,
            model_type="unigram",
            character_coverage=0.9995,
            pad_id=PAD_ID,
            unk_id=OOV_ID,
            bos_id=-1,
            eos_id=-1,
            control_symbols=list(reserved),
            byte_fallback=byte_fallback,
            hard_vocab_limit=False,  # vocab_size is an upper bound: small data gets fewer pieces
            num_threads=1,
            minloglevel=2,
        )
    except RuntimeError as error:  # e.g. a vocabulary smaller than the data's distinct characters
        raise TokenizerError(f"sentencepiece training failed: {str(error).split('] ')[-1]}") from None
    return model.getvalue()
