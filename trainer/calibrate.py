"""Calibrate a sentiment bundle on its validation rows: temperature scaling and the diagnostics'
OOV threshold, written into its manifest (no graph changes, so the sha256s stay).

Temperature scaling (Guo et al., 2017) fits one scalar T > 0 by maximum likelihood on validation
rows: the calibrated probability is sigmoid(logit(p) / T), which keeps every label at the 0.5
threshold (the sign of the logit does not change). The runtime applies it to every probability
(`runtime.screening.apply_temperature`), the web library the same.

The OOV threshold (`diagnostics.max_oov_share`) is the 99.9th percentile of the validation rows'
OOV shares: at most 0.1 % of in-domain rows are above it, so a row above it is outside what the model
was validated on (an out-of-distribution guard, not a prediction of errors; the manifest records how
accurate the model was on the validation rows above it).

ECE: 15 equal-width bins over the probability of the positive label, sum over bins of
(rows in bin / rows) x |share of positives - mean probability|; Brier: mean (p - label)^2.
"""

from __future__ import annotations

import json
import os
from collections import Counter
from pathlib import Path

import numpy as np

from runtime.bundle import MANIFEST, Bundle, validate_manifest
from runtime.screening import apply_temperature, scripts_of_languages
from trainer.data import LabelledTexts, load_labelled, shuffle_split
from trainer.errors import CalibrationError  # noqa: F401  (raised here; defined with the other errors)

ECE_BINS = 15
OOV_QUANTILE = 0.999  # share of validation rows whose OOV share is at or below the threshold (at least)
_EPSILON = 2.0 ** -24  # float32 probabilities of exactly 0 or 1 are clipped here for fitting only


# === Measures ===
def logits(probabilities: np.ndarray) -> np.ndarray:
    p = np.clip(np.asarray(probabilities, dtype=np.float64), _EPSILON, 1 - _EPSILON)
    return np.log(p) - np.log1p(-p)


def nll(probabilities: np.ndarray, labels: np.ndarray) -> float:
    p = np.clip(np.asarray(probabilities, dtype=np.float64), _EPSILON, 1 - _EPSILON)
    return float(-np.mean(labels * np.log(p) + (1 - labels) * np.log1p(-p)))


def ece(probabilities: np.ndarray, labels: np.ndarray, bins: int = ECE_BINS) -> float:
    """Expected calibration error over `bins` equal-width bins of the positive probability."""
    p = np.asarray(probabilities, dtype=np.float64)
    which = np.minimum((p * bins).astype(int), bins - 1)
    total = 0.0
    for b in range(bins):
        rows = which == b
        if rows.any():
            total += rows.mean() * abs(labels[rows].mean() - p[rows].mean())
    return float(total)


def brier(probabilities: np.ndarray, labels: np.ndarray) -> float:
    return float(np.mean((np.asarray(probabilities, dtype=np.float64) - labels) ** 2))


def fit_temperature(probabilities: np.ndarray, labels: np.ndarray, steps: int = 50) -> float:
    """T minimizing the validation NLL of sigmoid(logit(p) / T): Newton's method on beta = 1 / T (the
    NLL is convex in beta)."""
    z, y, beta = logits(probabilities), np.asarray(labels, dtype=np.float64), 1.0
    if len(np.unique(y)) < 2:
        raise CalibrationError("the validation rows hold one label only; a temperature needs both")
    for _ in range(steps):
        q = 1.0 / (1.0 + np.exp(-beta * z))
        gradient, curvature = np.sum((q - y) * z), np.sum(q * (1 - q) * z * z)
        if curvature <= 0:
            break
        step = gradient / curvature
        beta = max(beta - step, beta / 4)  # stay positive
        if abs(step) < 1e-12:
            break
    return float(1.0 / beta)


def figures(raw: np.ndarray, labels: np.ndarray, temperature: float) -> dict:
    """ECE, Brier and NLL before/after, and how many labels at 0.5 the temperature changed."""
    after = apply_temperature(raw.astype(np.float32), temperature)
    return {"rows": int(len(labels)),
            "ece_before": round(ece(raw, labels), 5), "ece_after": round(ece(after, labels), 5),
            "brier_before": round(brier(raw, labels), 5), "brier_after": round(brier(after, labels), 5),
            "nll_before": round(nll(raw, labels), 5), "nll_after": round(nll(after, labels), 5),
            "labels_changed_at_0.5": int(np.sum((raw >= 0.5) != (after >= 0.5)))}


# === Validation rows ===
def validation_rows(path: str, text_column: str = "text", label_column: str = "label", split: float | None = None,
                    seed: int = 0) -> LabelledTexts:
    """`path`'s rows; with `split`, only the validation part of shuffle_split(path, split, seed)."""
    rows = load_labelled(path, text_column=text_column, label_column=label_column)
    return shuffle_split(rows, split, seed)[1] if split else rows


# === Fitting a bundle ===
def raw_scores(classifier, texts: list[str]) -> tuple[np.ndarray, list]:
    """The graph's own probabilities (temperature 1) and each row's diagnostics."""
    saved, classifier.temperature = classifier.temperature, 1.0
    try:
        ids, lengths, totals = classifier.tokenizer.encode_counted(texts)
        probabilities, _ = classifier.score_encoded(ids, lengths)
        return probabilities, classifier.screen.check(texts, ids, lengths, totals)
    finally:
        classifier.temperature = saved


def oov_threshold(diagnostics: list, correct: np.ndarray) -> dict:
    """The 99.9th percentile of the validation rows' OOV shares, and what lies above it."""
    shares = np.array([-1.0 if row.oov_share is None else row.oov_share for row in diagnostics])
    read = shares >= 0
    threshold = float(np.quantile(shares[read], OOV_QUANTILE, method="higher"))
    above = read & (shares > threshold)
    return {"max_oov_share": round(threshold, 4),
            "how": f"the {100 * OOV_QUANTILE:g}th percentile of the OOV share of {int(read.sum()):,} validation rows",
            "validation_rows_above": int(above.sum()),
            "validation_accuracy_above": round(float(correct[above].mean()), 4) if above.any() else None}


def calibrate_bundle(classifier, validation: LabelledTexts, languages: list[str], test: LabelledTexts | None = None,
                     apply: bool = True, temperature_rows: LabelledTexts | None = None
                     ) -> tuple[dict, np.ndarray | None]:
    """The manifest fields calibration writes (languages, diagnostics, calibration) from the validation
    rows, and when `test` is given its figures (never used to fit) and raw test probabilities. Without
    `apply` the fitted temperature and its figures are recorded but the manifest's temperature is 1
    (validation rows that are not held out, e.g. seen by a teacher that was refit on them).
    `temperature_rows`: fit the temperature on these rows instead (e.g. the reviews without SST-2 dev);
    the OOV threshold still comes from all of `validation`."""
    from runtime.screening import Screen

    raw, _ = raw_scores(classifier, validation.texts)
    correct = (raw >= 0.5) == (validation.labels == 1)
    fit_rows = validation if temperature_rows is None else temperature_rows
    fit_raw = raw if temperature_rows is None else raw_scores(classifier, temperature_rows.texts)[0]
    temperature = fit_temperature(fit_raw, fit_rows.labels)
    scripts = scripts_of_languages(languages)
    classifier.screen = Screen(scripts, 1.0)  # statuses under the declared scripts, before the threshold
    _, rows = raw_scores(classifier, validation.texts)
    diagnostics = {"scripts": scripts, **oov_threshold(rows, correct)}
    classifier.screen = Screen(scripts, diagnostics["max_oov_share"])
    _, rows = raw_scores(classifier, validation.texts)
    statuses = Counter(row.status for row in rows)
    not_ok = np.array([row.status != "ok" for row in rows])
    diagnostics["validation_statuses"] = dict(statuses)
    diagnostics["validation_accuracy_not_ok"] = round(float(correct[not_ok].mean()), 4) if not_ok.any() else None
    calibration = {"method": "temperature", "temperature": round(temperature, 6) if apply else 1.0,
                   "fitted_temperature": round(temperature, 6), "applied": apply,
                   "fitted_on": {"rows": len(fit_rows), "source": fit_rows.source},
                   "validation": figures(fit_raw, fit_rows.labels, temperature)}
    if temperature_rows is not None:
        calibration["all_validation"] = {"source": validation.source, **figures(raw, validation.labels, temperature)}
    test_raw = None
    if test is not None:
        test_raw, _ = raw_scores(classifier, test.texts)
        calibration["test"] = {"data": test.source, **figures(test_raw, test.labels, temperature)}
    return {"languages": list(languages), "diagnostics": diagnostics, "calibration": calibration}, test_raw


def write_calibration(bundle: Bundle, fields: dict) -> Path:
    """The bundle's manifest with `fields` replaced, validated, written atomically (temp + rename)."""
    manifest = {**bundle.manifest, **fields}
    validate_manifest(manifest)
    target = bundle.path / MANIFEST
    partial = target.with_name(f".{MANIFEST}.partial")
    partial.write_text(json.dumps(manifest, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    os.replace(partial, target)
    return target


def plot_reliability(raw: np.ndarray, labels: np.ndarray, temperature: float, path: str | Path, title: str) -> None:
    """Reliability diagram (15 bins): share of positives against mean probability, before and after."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    after = apply_temperature(raw.astype(np.float32), temperature)
    figure, axis = plt.subplots(figsize=(5, 5))
    axis.plot([0, 1], [0, 1], color="grey", linestyle=":", label="perfectly calibrated")
    for probabilities, name in ((raw, "before"), (after, f"after (T = {temperature:.3f})")):
        which = np.minimum((np.asarray(probabilities, dtype=np.float64) * ECE_BINS).astype(int), ECE_BINS - 1)
        used = [b for b in range(ECE_BINS) if (which == b).any()]
        xs = [float(np.mean(probabilities[which == b])) for b in used]
        ys = [float(np.mean(labels[which == b])) for b in used]
        axis.plot(xs, ys, marker="o", label=f"{name}: ECE {ece(probabilities, labels):.4f}")
    axis.set(xlabel="mean predicted P(positive) in bin", ylabel="share of positive labels in bin", title=title,
             xlim=(0, 1), ylim=(0, 1))
    axis.legend(loc="upper left", fontsize=8)
    figure.tight_layout()
    figure.savefig(path, dpi=110)
    plt.close(figure)
