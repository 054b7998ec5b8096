"""BLEU and chrF (sacrebleu) for translation bundles, overall and by source-length bucket."""

from __future__ import annotations

from pathlib import Path

from runtime.bundle import BundleError
from trainer.data import SentencePairs

BUCKETS = ((1, 5), (6, 10), (11, 15), (16, 20), (21, 1000))  # source tokens


def bucket_name(low: int, high: int) -> str:
    return f"{low}-{high}" if high < 1000 else f">{low - 1}"


def evaluate(translator, pairs: SentencePairs, beam_size: int = 4) -> dict:
    """Corpus BLEU / chrF of `translator` on `pairs`, cased (sacrebleu defaults: what a reader of the
    output sees), plus the lowercased figures for comparison with lowercasing models, and cased BLEU
    per source-length bucket."""
    import sacrebleu

    results = translator.translate(pairs.sources, beam_size=beam_size)
    hypotheses = [r.text for r in results]
    overall = {
        "bleu": round(sacrebleu.corpus_bleu(hypotheses, [pairs.targets]).score, 2),
        "chrf": round(sacrebleu.corpus_chrf(hypotheses, [pairs.targets]).score, 2),
        "cased": True,
        "bleu_uncased": round(sacrebleu.corpus_bleu(hypotheses, [pairs.targets], lowercase=True).score, 2),
        "chrf_uncased": round(
            sacrebleu.corpus_chrf([h.lower() for h in hypotheses], [[t.lower() for t in pairs.targets]]).score, 2),
        "sentences": len(pairs),
        "beam_size": beam_size,
    }
    by_length = {}
    for low, high in BUCKETS:
        rows = [i for i, r in enumerate(results) if low <= len(r.source_tokens) <= high]
        if rows:
            score = sacrebleu.corpus_bleu([hypotheses[i] for i in rows], [[pairs.targets[i] for i in rows]])
            by_length[bucket_name(low, high)] = {"bleu": round(score.score, 2), "sentences": len(rows)}
    overall["bleu_by_source_length"] = by_length
    return overall


SPLIT_KEYS = ("pairs_sha256", "direction", "split_seed", "test_pairs")


def test_reports(manifests: dict[str, dict]) -> dict[str, dict]:
    """The recorded test-split reports of translation bundles, checked to come from one test split
    (same pairs file, direction, split seed and size), so their figures can be compared."""
    reports, split = {}, None
    for name, manifest in manifests.items():
        report = manifest.get("metrics", {}).get("test")
        if manifest.get("task") != "translation" or not report:
            raise BundleError(f"{name}: not a translation bundle with a recorded test-split evaluation")
        this = tuple(manifest.get("data", {}).get(k) for k in SPLIT_KEYS)
        if split is not None and this != split[1]:
            raise BundleError(f"{name}: evaluated on a different test split than {split[0]} "
                             f"({', '.join(SPLIT_KEYS)}: {this} vs {split[1]})")
        if reports and bool(report.get("cased")) != bool(next(iter(reports.values())).get("cased")):
            raise ValueError(f"{name}: its BLEU is {'cased' if report.get('cased') else 'lowercased'}, unlike "
                             f"{next(iter(reports))}'s; re-evaluate one of them the same way")
        split = split or (name, this)
        reports[name] = report
    return reports


def comparison_table(reports: dict[str, dict]) -> str:
    """Markdown: BLEU / chrF overall and BLEU per source-length bucket, one row per model."""
    buckets = list(dict.fromkeys(b for r in reports.values() for b in r["bleu_by_source_length"]))
    first = next(iter(reports.values()))["bleu_by_source_length"]
    header = ["model", "BLEU", "chrF"] + [f"{b} ({first.get(b, {}).get('sentences', 0)})" for b in buckets]
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for name, report in reports.items():
        cells = [name, f"{report['bleu']:.2f}", f"{report['chrf']:.2f}"]
        cells += [f"{report['bleu_by_source_length'][b]['bleu']:.2f}" if b in report["bleu_by_source_length"] else "–"
                  for b in buckets]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def plot_bleu_by_length(reports: dict[str, dict], path: str | Path) -> None:
    """BLEU per source-length bucket, one line per model (the shape of Bahdanau et al.'s Fig. 2)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figure, axes = plt.subplots(figsize=(6, 4))
    for name, report in reports.items():
        buckets = report["bleu_by_source_length"]
        ticks = [f"{bucket}\n({b['sentences']})" for bucket, b in buckets.items()]
        axes.plot(ticks, [b["bleu"] for b in buckets.values()], marker="o", label=name)
    axes.set_xlabel("source sentence length (tokens; test sentences)")
    axes.set_ylabel("BLEU")
    axes.grid(alpha=0.3)
    axes.legend()
    figure.tight_layout()
    figure.savefig(path, dpi=120)
    plt.close(figure)
