"""BLEU and chrF (sacrebleu) for translation bundles, overall and by source-length bucket."""

from __future__ import annotations

from pathlib import Path

from trainer.data import SentencePairs

BUCKETS = ((1, 5), (6, 10), (11, 15), (16, 20), (21, 1000))  # source tokens


def bucket_name(low: int, high: int) -> str:
    return f"{low}-{high}" if high < 1000 else f">{low - 1}"


def evaluate(translator, pairs: SentencePairs, beam_size: int = 4) -> dict:
    """Corpus BLEU / chrF of `translator` on `pairs` (lowercased: the tokenizers lowercase), and
    BLEU per source-length bucket."""
    import sacrebleu

    results = translator.translate(pairs.sources, beam_size=beam_size)
    hypotheses = [r.text for r in results]
    overall = {
        "bleu": round(sacrebleu.corpus_bleu(hypotheses, [pairs.targets], lowercase=True).score, 2),
        "chrf": round(sacrebleu.corpus_chrf(hypotheses, [[t.lower() for t in pairs.targets]]).score, 2),
        "sentences": len(pairs),
        "beam_size": beam_size,
    }
    by_length = {}
    for low, high in BUCKETS:
        rows = [i for i, r in enumerate(results) if low <= len(r.source_tokens) <= high]
        if rows:
            score = sacrebleu.corpus_bleu([hypotheses[i] for i in rows], [[pairs.targets[i] for i in rows]], lowercase=True)
            by_length[bucket_name(low, high)] = {"bleu": round(score.score, 2), "sentences": len(rows)}
    overall["bleu_by_source_length"] = by_length
    return overall


def plot_bleu_by_length(reports: dict[str, dict], path: str | Path) -> None:
    """BLEU per source-length bucket, one line per model (the shape of Bahdanau et al.'s Fig. 2)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figure, axes = plt.subplots(figsize=(6, 4))
    for name, report in reports.items():
        buckets = report["bleu_by_source_length"]
        axes.plot(list(buckets), [b["bleu"] for b in buckets.values()], marker="o", label=name)
    axes.set_xlabel("source sentence length (tokens)")
    axes.set_ylabel("BLEU")
    axes.grid(alpha=0.3)
    axes.legend()
    figure.tight_layout()
    figure.savefig(path, dpi=120)
    plt.close(figure)
