"""Does the translator keep numbers? Digit-copy rate and cased BLEU on a bundle's held-out test split.

    python -m bench translation-quality --bundle artifacts/spa-eng-attention            # digit subset
    python -m bench translation-quality --bundle artifacts/spa-eng-attention --bleu     # + whole split
    python -m bench translation-quality --bundle artifacts/spa-eng-attention --no-copy  # the model alone

The test split is the one the trainer carved (`trainer.data.split_pairs` with the manifest's split
seed; no TensorFlow). Digit-copy rate: of the test sentences whose source holds a digit, the share
whose translation holds every digit sequence of the source unchanged (as many times as the source
has it; `1.000` -> `1,000` keeps both sequences). BLEU: sacrebleu's corpus BLEU, cased, defaults.
"""

from __future__ import annotations

import re
import time
from collections import Counter
from pathlib import Path

DIGITS = re.compile(r"\d+")


def test_pairs(bundle: Path, data: str | None = None):
    """The bundle's recorded test split (never trained on), as trainer.data.SentencePairs."""
    from runtime.bundle import Bundle
    from trainer.data import read_pairs, split_pairs

    recorded = Bundle.load(bundle).manifest.get("data", {})
    source, target = recorded.get("direction", "spa->eng").split("->")
    pairs = read_pairs(data or recorded["pairs"], source, target)
    return split_pairs(pairs, 0.05, 0.05, recorded.get("split_seed", 0))[2]


def keeps_digits(source: str, translation: str) -> bool:
    """Every digit sequence of `source` appears unchanged in `translation` (counted with multiplicity)."""
    return not Counter(DIGITS.findall(source)) - Counter(DIGITS.findall(translation))


def digit_rows(sources: list[str]) -> list[int]:
    return [i for i, source in enumerate(sources) if DIGITS.search(source)]


def measure(bundle: str, data: str | None = None, beam_size: int = 4, bleu: bool = False, copy: bool = True) -> dict:
    """{"digit_sentences", "digit_copy_rate", "misses" (up to 10 examples)[, "bleu", "sentences"], "seconds"};
    `copy`: Translator.translate's (False: the model's own words, runtime.models.copying off)."""
    import runtime

    pairs = test_pairs(Path(bundle), data)
    translator = runtime.load(bundle, provider="cpu")
    started = time.perf_counter()
    rows = list(range(len(pairs))) if bleu else digit_rows(pairs.sources)
    sources = [pairs.sources[i] for i in rows]
    hypotheses = [r.text for r in translator.translate(sources, beam_size=beam_size, copy=copy)]
    by_row = dict(zip(rows, hypotheses))
    digits = digit_rows(pairs.sources)
    kept = [i for i in digits if keeps_digits(pairs.sources[i], by_row[i])]
    result = {"bundle": bundle, "beam_size": beam_size, "copy": copy, "digit_sentences": len(digits),
              "digit_copy_rate": round(len(kept) / max(len(digits), 1), 4),
              "misses": [(pairs.sources[i], by_row[i]) for i in digits if i not in set(kept)][:10]}
    if bleu:
        import sacrebleu

        result["bleu"] = round(sacrebleu.corpus_bleu(hypotheses, [pairs.targets]).score, 2)
        result["sentences"] = len(pairs)
    result["seconds"] = round(time.perf_counter() - started, 1)
    return result
