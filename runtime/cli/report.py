"""attn-score --report: a self-contained HTML page (no network) about a scored file.

On the page: every sampled row's id, label and probability with its words shaded by the attention
the model gave them; the most attended words across the whole file; a histogram of all
probabilities (inline SVG). Large inputs are sampled: a uniform reservoir sample (Algorithm R,
seed 0) of `rows` rows, shown in input order, and the page says so. Totals, the histogram and the
word ranking cover every row. Needs jinja2 (the `report` extra), imported only here.
"""

from __future__ import annotations

import random
from collections import Counter
from datetime import datetime, timezone
from pathlib import Path

from runtime.errors import require_extra
from runtime.io.atomic import OutputFile
from runtime.io.columns import KeptColumns
from runtime.io.tables import printable_name

INSTALL = "pip install 'attn-onnx[report]'"
BINS = 20
TOP_PER_ROW = 3  # a row's most attended words count towards the file's ranking


class Report:
    def __init__(self, classifier, rows: int = 200, seed: int = 0, top_words: int = 30):
        require_extra("report", "jinja2", needed_by="--report")
        self.classifier, self.capacity, self.top_words = classifier, rows, top_words
        self.random = random.Random(seed)
        self.sample: list[tuple] = []
        self.count = 0
        self.histogram = [0] * BINS
        self.labels: Counter = Counter()
        self.word_rows: Counter = Counter()  # rows in which the word was among the TOP_PER_ROW
        self.word_weight: Counter = Counter()  # its attention summed over those rows

    def add(self, chunk, probabilities, attention, threshold: float) -> None:
        """One scored chunk: (id, text) pairs, their probabilities and attention rows."""
        tokenizer, labels = self.classifier.tokenizer, self.classifier.labels
        for (row_id, text), probability, weights in zip(chunk, probabilities, attention):
            probability = float(probability)
            label = labels[int(probability >= threshold)]
            self.histogram[min(int(probability * BINS), BINS - 1)] += 1
            self.labels[label] += 1
            tokens, weights = tokenizer.words(tokenizer.tokenize(text), weights)  # pieces joined into words
            for i in sorted(range(len(tokens)), key=lambda i: -weights[i])[:TOP_PER_ROW]:
                self.word_rows[tokens[i]] += 1
                self.word_weight[tokens[i]] += float(weights[i])
            row = (self.count, KeptColumns.cell(row_id), label, probability, tokens,
                   [float(w) for w in weights[: len(tokens)]])
            if len(self.sample) < self.capacity:
                self.sample.append(row)
            else:
                slot = self.random.randint(0, self.count)  # Algorithm R: each row kept with probability capacity / seen
                if slot < self.capacity:
                    self.sample[slot] = row
            self.count += 1

    def render(self, source: str) -> str:
        import jinja2

        environment = jinja2.Environment(loader=jinja2.FileSystemLoader(Path(__file__).parent / "templates"),
                                         autoescape=True, trim_blocks=True, lstrip_blocks=True)
        rows = []
        for number, row_id, label, probability, tokens, weights in sorted(self.sample):
            top = max(weights, default=0.0) or 1.0
            rows.append({"number": number + 1, "id": row_id, "label": label, "probability": probability,
                         "words": [(token, weight, weight / top) for token, weight in zip(tokens, weights)]})
        ranking = [(word, self.word_rows[word], self.word_weight[word] / self.word_rows[word])
                   for word, _ in self.word_weight.most_common(self.top_words)]
        tallest = max(self.histogram) or 1
        bars = [{"low": i / BINS, "high": (i + 1) / BINS, "count": n, "height": 150 * n / tallest}
                for i, n in enumerate(self.histogram)]
        return environment.get_template("report.html.j2").render(
            source=source, bundle=self.classifier.bundle.path.name,
            created=datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
            count=self.count, shown=len(rows), capacity=self.capacity, sampled=self.count > len(rows), rows=rows,
            labels=sorted(self.labels.items()), ranking=ranking, bars=bars, top_per_row=TOP_PER_ROW)

    def write(self, path: str, source: str) -> None:
        with OutputFile(path, inputs=[source]) as handle:
            handle.write(self.render(printable_name(source)))
