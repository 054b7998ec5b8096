"""attn-score --report: a self-contained HTML page, opened in real headless Chromium."""

from __future__ import annotations

import csv
import re

from click.testing import CliRunner

from runtime.cli import main as score_main
from tests.test_pipeline import reviews, write_csv


def test_report_in_headless_chromium(tiny_bundle, chromium, tmp_path):
    import runtime

    texts = [text or "meh" for text in reviews(500, seed=2)]
    texts[0] = "brilliant brilliant film"
    source, out, report = tmp_path / "in.csv", tmp_path / "out.csv", tmp_path / "report.html"
    write_csv(source, [f"r{i}" for i in range(500)], texts)
    result = CliRunner().invoke(score_main, [str(source), "--model", str(tiny_bundle), "-o", str(out),
                                             "--report", str(report), "--report-rows", "50", "--chunk-rows", "64"])
    assert result.exit_code == 0, result.output
    html = report.read_text(encoding="utf-8")
    assert not re.search(r"""(src|href)\s*=\s*["']?(https?:)?//""", html)  # nothing fetched from anywhere

    chromium.get(report.as_uri())
    assert chromium.execute_script("return performance.getEntriesByType('resource').length") == 0
    body = chromium.find_element("tag name", "body").text
    assert "500 rows" in body and "sample of 50 of 500 rows" in body and "seed 0" in body

    with open(out, newline="") as handle:
        scored = {row["id"]: row for row in csv.DictReader(handle)}
    rows = chromium.find_elements("css selector", "#rows tr.row")
    assert len(rows) == 50
    numbers = [int(row.find_elements("tag name", "td")[0].text) for row in rows]
    assert numbers == sorted(numbers) and len(set(numbers)) == 50  # a sample, in input order
    classifier = runtime.load(tiny_bundle)
    for row in rows[:10]:
        cells = row.find_elements("tag name", "td")
        row_id, label, probability = cells[1].text, cells[2].text, float(cells[3].text)
        assert label == scored[row_id]["label"] and abs(probability - float(scored[row_id]["probability"])) < 1e-4
        words = cells[4].find_elements("css selector", "span.w")
        text = texts[int(row_id[1:])]
        assert [w.text for w in words] == classifier.tokenizer.tokenize(text)
        if words:  # shaded by attention: the weights are the model's, the darkest is the most attended
            weights = [float(w.get_attribute("data-weight")) for w in words]
            expected = classifier.score_and_explain([text], top_k=len(words))[1][0]
            assert max(weights) == round(expected[0][1], 4)
            shades = [float(w.get_attribute("data-shade")) for w in words]
            darkest = words[weights.index(max(weights))]
            assert shades[weights.index(max(weights))] == 1.0
            assert darkest.value_of_css_property("background-color") in ("rgb(255, 140, 0)", "rgba(255, 140, 0, 1)")
            if min(shades) < 0.5:  # a faint word is painted faint
                faint = words[shades.index(min(shades))].value_of_css_property("background-color")
                assert faint.startswith("rgba(255, 140, 0, 0"), faint

    histogram = chromium.find_elements("css selector", "#histogram rect")
    assert len(histogram) == 20
    counts = [int(re.search(r": (\d+) rows", bar.get_attribute("textContent")).group(1)) for bar in histogram]
    assert sum(counts) == 500  # every row, not only the sample
    ranking = [[td.text for td in row.find_elements("tag name", "td")]
               for row in chromium.find_elements("css selector", "#words tbody tr")]
    seen = {token for text in texts for token in classifier.tokenizer.tokenize(text)}
    assert 0 < len(ranking) <= 30 and {word for word, _, _ in ranking} <= seen
    totals = [int(n.replace(",", "")) * float(mean) for _, n, mean in ranking]
    assert all(a >= b - 0.01 * a for a, b in zip(totals, totals[1:]))  # ranked by the attention received


def test_report_refuses_to_overwrite_the_input(tiny_bundle, tmp_path):
    source = tmp_path / "in.csv"
    source.write_text("text\nfine\n")
    result = CliRunner().invoke(score_main, [str(source), "--model", str(tiny_bundle), "--report", str(source)])
    assert result.exit_code == 1 and "would overwrite the input" in result.output
    assert source.read_text() == "text\nfine\n"
