"""Per-row screening of classifier input (what the model read, and whether its answer means anything) and calibration.

For every text: `token_count` (tokens after normalization, before truncation), `oov_share` (share of
the tokens the model read that are outside its vocabulary; None when it read none),
`truncated_tokens` (tokens dropped to fit `max_len`; 0 = the whole text was read) and a `status`:

    ok            the model read the text
    empty         nothing to read: no token, or none holding a letter or digit ("", "   ", "😡😡😡")
    other-script  most letters are in a script the model's declared languages do not use (Korean into
                  an English model); letters of the Common and Inherited scripts count for neither side
    unknown       no token is in the vocabulary, or the OOV share is above the bundle's threshold

(checked in that order). The scripts are Unicode's Script property (the `regex` package; the web
library uses JavaScript's \\p{Script=...}, tests/test_screening.py checks that both agree). A row
that is not ok gets the label `unknown` and no probability unless labels are forced (`verdict`).

The manifest declares `languages` and `diagnostics` ({"scripts", "max_oov_share"}), written by
`attn-export calibrate`; a manifest without them gets `default_scripts` (the scripts of its
vocabulary) and `DEFAULT_MAX_OOV_SHARE`. Calibration (`apply_temperature`) lives here too: the
probability the graph gives is recalibrated by the manifest's temperature in every host.
"""

from __future__ import annotations

import re
from collections import Counter
from dataclasses import asdict, dataclass
from typing import Sequence

import numpy as np
import regex

STATUSES = ("ok", "empty", "unknown", "other-script")
UNKNOWN_LABEL = "unknown"
DEFAULT_MAX_OOV_SHARE = 0.5  # manifests that choose none: a row is unknown when most tokens are outside the vocabulary
DEFAULT_SCRIPT_SHARE = 0.1  # a script holding this share of a vocabulary's letters is the model's (old manifests)
NEUTRAL_SCRIPTS = ("Common", "Inherited")  # letters of no particular script (e.g. U+02B9 modifier letters)
# the scripts a manifest may declare (and that `default_scripts` looks for in a vocabulary)
SCRIPTS = ("Latin", "Greek", "Cyrillic", "Armenian", "Hebrew", "Arabic", "Devanagari", "Bengali", "Tamil", "Thai",
           "Georgian", "Hangul", "Hiragana", "Katakana", "Han")
LANGUAGE_SCRIPTS = {  # ISO 639-1 code -> the scripts its text is written in
    "en": ("Latin",), "es": ("Latin",), "fr": ("Latin",), "de": ("Latin",), "it": ("Latin",), "pt": ("Latin",),
    "nl": ("Latin",), "ko": ("Hangul", "Han"), "ja": ("Han", "Hiragana", "Katakana"), "zh": ("Han",),
    "ru": ("Cyrillic",), "uk": ("Cyrillic",), "el": ("Greek",), "ar": ("Arabic",), "he": ("Hebrew",),
    "hi": ("Devanagari",), "th": ("Thai",),
}
_WORD_CHARACTER = re.compile(r"\w")  # what a word token is made of: the tokenizer's own \w (stdlib re)


def scripts_of_languages(languages: Sequence[str]) -> list[str]:
    """The scripts of ISO 639-1 codes, in order, once each; a KeyError names an unknown code."""
    unknown = [code for code in languages if code not in LANGUAGE_SCRIPTS]
    if unknown:
        raise KeyError(f"unknown language code(s) {unknown}; known: {', '.join(sorted(LANGUAGE_SCRIPTS))}")
    return list(dict.fromkeys(script for code in languages for script in LANGUAGE_SCRIPTS[code]))


def _script_class(scripts: Sequence[str]) -> str:
    return "".join(f"\\p{{Script={name}}}" for name in scripts)


def default_scripts(vocab: Sequence[str]) -> list[str]:
    """The scripts holding at least DEFAULT_SCRIPT_SHARE of a vocabulary's letters (SCRIPTS' order)."""
    text = "".join(vocab)
    letters = len(regex.findall(r"\p{L}", text))
    counts = {name: len(regex.findall(f"(?=\\p{{L}})\\p{{Script={name}}}", text)) for name in SCRIPTS}
    return [name for name in SCRIPTS if letters and counts[name] >= DEFAULT_SCRIPT_SHARE * letters]


@dataclass(frozen=True)
class Diagnostics:
    token_count: int
    oov_share: float | None
    truncated_tokens: int
    status: str

    def record(self, digits: int | None = None) -> dict:
        """The row's fields as every output writes them (JSONL, CSV, Parquet, Ray, Python API); the OOV
        share unrounded (as the web library gives it) or rounded to `digits` (attn-score's JSONL: 4)."""
        fields = asdict(self)
        if digits is not None and self.oov_share is not None:
            fields["oov_share"] = round(self.oov_share, digits)
        return fields


FIELDS = tuple(Diagnostics.__dataclass_fields__)  # the output columns, in order, after the existing ones


class Screen:
    """Decides each row's status for one bundle: its tokenizer's OOV id, its scripts and threshold."""

    def __init__(self, scripts: Sequence[str], max_oov_share: float, oov_id: int = 1):
        self.scripts, self.max_oov_share, self.oov_id = list(scripts), float(max_oov_share), oov_id
        own = _script_class(self.scripts)
        self._own = regex.compile(f"(?=\\p{{L}})[{own}]") if self.scripts else None
        self._foreign = regex.compile(f"(?![{own}{_script_class(NEUTRAL_SCRIPTS)}])\\p{{L}}") if self.scripts else None

    @classmethod
    def from_manifest(cls, manifest: dict, vocab: Sequence[str]) -> "Screen":
        declared = manifest.get("diagnostics") or {}
        scripts = declared.get("scripts")
        if scripts is None:
            languages = manifest.get("languages")
            scripts = scripts_of_languages(languages) if languages else default_scripts(vocab)
        return cls(scripts, declared.get("max_oov_share", DEFAULT_MAX_OOV_SHARE))

    def foreign_script(self, text: str) -> bool:
        """Most of the text's letters (Common/Inherited aside) are in scripts the model does not read."""
        if self._foreign is None:
            return False
        foreign = len(self._foreign.findall(text))
        return foreign > 0 and foreign > len(self._own.findall(text))

    def check(self, texts: Sequence[str], ids: np.ndarray, lengths: np.ndarray,
              totals: np.ndarray) -> list[Diagnostics]:
        """Each row's diagnostics from its text, the ids the model read (B, T), their lengths and the
        token count before truncation (`Tokenizer.encode_counted`)."""
        valid = np.arange(ids.shape[1]) < lengths[:, None]
        unknown = ((ids == self.oov_id) & valid).sum(axis=1)
        rows = []
        for text, read, oov, total in zip(texts, lengths.tolist(), unknown.tolist(), totals.tolist()):
            share = oov / read if read else None
            if not read or not _WORD_CHARACTER.search(text):
                status = "empty"
            elif self.foreign_script(text):
                status = "other-script"
            elif oov == read or share > self.max_oov_share:
                status = "unknown"
            else:
                status = "ok"
            rows.append(Diagnostics(total, share, total - read, status))
        return rows


def verdict(probability: float, diagnostics: Diagnostics, labels: Sequence[str], threshold: float = 0.5,
            force: bool = False) -> tuple[float | None, str]:
    """(probability, label) as the outputs give them: none and `unknown` for a row that is not ok,
    unless `force` (then the model's answer whatever the status)."""
    if diagnostics.status != "ok" and not force:
        return None, UNKNOWN_LABEL
    return float(probability), labels[int(probability >= threshold)]


def count_statuses(diagnostics: Sequence[Diagnostics], counts: Counter | None = None) -> Counter:
    counts = Counter() if counts is None else counts
    counts.update(row.status for row in diagnostics)
    return counts


def status_summary(counts: Counter) -> str:
    """'status: 7 ok, 1 empty, 2 other-script' (every status seen, in STATUSES' order; ok always)."""
    return "status: " + ", ".join(f"{counts.get(name, 0):,} {name}" for name in STATUSES
                                  if name == "ok" or counts.get(name))


# === Calibration ===
def temperature_of(manifest: dict) -> float:
    """The manifest's calibration temperature (1 = the graph's own probabilities)."""
    return float((manifest.get("calibration") or {}).get("temperature", 1.0))


def apply_temperature(probabilities: np.ndarray, temperature: float) -> np.ndarray:
    """sigmoid(logit(p) / T), in float64 from the graph's float32 (the web library does the same
    arithmetic), returned as float32. T = 1 returns the input unchanged; p of exactly 0 or 1 stays."""
    if temperature == 1.0:
        return probabilities
    p = np.asarray(probabilities, dtype=np.float64)
    with np.errstate(divide="ignore", over="ignore"):
        logit = np.log(p) - np.log1p(-p)
        return (1.0 / (1.0 + np.exp(-logit / temperature))).astype(np.float32)
