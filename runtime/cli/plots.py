"""Pictures of what a model attended to. matplotlib is an optional extra (`pip install 'attn-onnx[plot]'`),
imported only when a plot is asked for."""

from __future__ import annotations

from runtime.errors import require_extra


def attention_plotter(folder: str):
    """A function writing FOLDER/<id>.png: target tokens (rows) x source tokens (columns), like
    Fig. 3 of Bahdanau et al. matplotlib is an optional extra, imported only here."""
    matplotlib = require_extra("plot", "matplotlib", needed_by="--plot-attention")
    matplotlib.use("Agg")
    from pathlib import Path

    import matplotlib.pyplot as plt

    target = Path(folder)
    target.mkdir(parents=True, exist_ok=True)

    def plot(row_id: str, result) -> None:
        rows, columns, weights = result.word_attention()  # words, not SentencePiece pieces; then </s>
        if not columns:
            columns, weights = ["(empty)"], [[0.0]] * len(rows)
        figure, axes = plt.subplots(figsize=(1 + 0.45 * len(columns), 1 + 0.45 * len(rows)))
        axes.imshow(weights, cmap="gray", vmin=0.0, vmax=1.0, aspect="auto")
        axes.set_xticks(range(len(columns)), columns, rotation=90)
        axes.set_yticks(range(len(rows)), rows)
        axes.xaxis.tick_top()
        figure.tight_layout()
        safe = "".join(ch if ch.isalnum() or ch in "-_" else "_" for ch in str(row_id))
        figure.savefig(target / f"{safe}.png", dpi=100)
        plt.close(figure)

    return plot
