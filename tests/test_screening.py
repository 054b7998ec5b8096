"""Per-row diagnostics and calibration (issue 32): the shipped models say when they cannot read a text,
the same in the Python API, attn-score, the web library (real Node) and the Ray engine (test_distributed);
the temperature is fitted on validation rows and applied identically in Python and JS."""

from __future__ import annotations

import csv
import io
import json
import shutil
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner
from test_web import node

import runtime
from conftest import DATASETS
from runtime.cli import main as score_cli
from runtime.screening import SCRIPTS, apply_temperature

REPO = Path(__file__).resolve().parents[1]
EDGE_TEXTS = ["", "   ", "😡😡😡", "정말 최고의 영화", "Это ужасный фильм.", "Das war ein schrecklicher Film.",
              "qqqzzz xxyyq", "A wonderful, moving film.", "Dull, predictable and far too long."]
GERMAN = "Das war ein schrecklicher Film."


@pytest.fixture(scope="module")
def imdb():
    return runtime.load("imdb")


@pytest.fixture(scope="module")
def long_review(imdb_test) -> str:
    """A real IMDB review repeated to 6,000 words."""
    words = imdb_test.texts[0].split()
    return " ".join((words * (6000 // len(words) + 1))[:6000])


def test_empty_texts_get_status_empty_and_no_answer(imdb):
    for model in (imdb, runtime.load("nsmc")):
        for record in model.score(["", "   ", "😡😡😡"]):
            assert (record["status"], record["probability"], record["label"]) == ("empty", None, "unknown")
            assert record["oov_share"] is None or model is not imdb  # nsmc's SentencePiece reads the emoji as <unk>
    forced = imdb.score([""], force=True)[0]
    assert forced["status"] == "empty" and forced["label"] in imdb.labels and 0 <= forced["probability"] <= 1


def test_korean_and_russian_into_the_english_model_are_other_script(imdb):
    korean, russian = imdb.score(["정말 최고의 영화", "Это ужасный фильм."])
    assert korean["status"] == russian["status"] == "other-script"
    assert korean["label"] == "unknown" and korean["probability"] is None
    # Hangul is the Korean model's own script; Latin is not
    ko, en = runtime.load("nsmc").score(["정말 최고의 영화", "What a great film, I loved every minute."])
    assert (ko["status"], en["status"]) == ("ok", "other-script")


def test_german_is_caught_by_the_oov_share_the_manifest_chose(imdb):
    """Latin script, so only the OOV share can catch it: 2 of its 5 tokens are outside the vocabulary,
    above the threshold calibration chose on validation rows (at most 0.1 % of them are above it)."""
    declared = imdb.bundle.manifest["diagnostics"]
    record = imdb.score([GERMAN])[0]
    assert record["oov_share"] == pytest.approx(0.4)
    rows = sum(declared["validation_statuses"].values())  # the validation rows the threshold was chosen on
    assert declared["max_oov_share"] < 0.4 and declared["validation_rows_above"] <= 0.001 * rows
    assert record["status"] == "unknown" and record["label"] == "unknown"


def test_a_6000_word_review_says_how_much_was_cut(imdb, long_review):
    record = imdb.score([long_review])[0]
    max_len = imdb.tokenizer.spec.max_len
    assert record["token_count"] >= 6000 and record["truncated_tokens"] == record["token_count"] - max_len
    assert record["status"] == "ok" and record["probability"] is not None


def test_attn_score_columns_summary_and_force_labels(tmp_path, long_review):
    source = tmp_path / "in.csv"
    with source.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(["text", "note"])
        writer.writerows([text, f"n{i}"] for i, text in enumerate(EDGE_TEXTS + [long_review]))
    result = CliRunner().invoke(score_cli, [str(source), "--keep-columns", "note"])
    assert result.exit_code == 0, result.output
    rows = list(csv.DictReader(io.StringIO(result.stdout)))
    assert list(rows[0]) == ["id", "note", "probability", "label", "token_count", "oov_share", "truncated_tokens",
                             "status"]
    assert [row["status"] for row in rows] == ["empty"] * 3 + ["other-script"] * 2 + ["unknown"] * 2 + ["ok"] * 3
    assert all(row["probability"] == "" and row["label"] == "unknown" for row in rows[:7])
    assert int(rows[-1]["truncated_tokens"]) >= 5500
    assert "status: 3 ok, 3 empty, 2 unknown, 2 other-script" in result.stderr
    assert "1 row truncated" in result.stderr and "7 rows not ok" in result.stderr
    forced = CliRunner().invoke(score_cli, [str(source), "--format", "jsonl", "--force-labels"])
    records = [json.loads(line) for line in forced.stdout.splitlines()]
    assert all(r["label"] in ("negative", "positive") and r["probability"] is not None for r in records)
    assert [r["status"] for r in records] == [row["status"] for row in rows]


def _calibrated_copy(tmp_path: Path, temperature: float) -> Path:
    bundle = tmp_path / "imdb-t"
    shutil.copytree(runtime.shipped_bundles()["imdb"], bundle, ignore=shutil.ignore_patterns("training", "*.png"))
    manifest = json.loads((bundle / "manifest.json").read_text())
    manifest["calibration"] = {**manifest.get("calibration", {}), "temperature": temperature}
    (bundle / "manifest.json").write_text(json.dumps(manifest))
    return bundle


def _js(tmp_path: Path, bundle: Path, texts: list[str], options: str = "{}") -> list[dict]:
    (tmp_path / "texts.json").write_text(json.dumps(texts))
    done = node("web/test/parity.mjs", str(bundle), str(tmp_path / "texts.json"), str(tmp_path / "out.json"), "model",
                options)
    assert done.returncode == 0, done.stderr
    return json.loads((tmp_path / "out.json").read_text())


def test_calibration_and_diagnostics_identical_in_python_and_js(tmp_path, imdb_test, long_review):
    """The same temperature function in both hosts (1e-6 on the same graph output), the same fields and
    statuses per row. (The two engines' graph outputs differ by up to 1e-5 before calibration, see
    test_web, and a temperature > 1 stretches that near 0 and 1: so each host's calibrated probability is
    held to the calibration of its own raw output.)"""
    calibrated, raw = _calibrated_copy(tmp_path / "t", 2.5), _calibrated_copy(tmp_path / "raw", 1.0)
    texts = EDGE_TEXTS + [long_review] + [str(t) for t in imdb_test.texts[::1000]]
    js = _js(tmp_path, calibrated, texts)
    python = runtime.load(calibrated).score(texts)
    fields = ("label", "token_count", "oov_share", "truncated_tokens", "status")
    for text, j, p in zip(texts, js, python):
        assert {k: j[k] for k in fields} == {k: p[k] for k in fields}, text[:60]
        assert (j["probability"] is None) == (p["probability"] is None)
    js_forced = [r["probability"] for r in _js(tmp_path, calibrated, texts, '{"force": true}')]
    js_raw = np.float32([r["probability"] for r in _js(tmp_path, raw, texts, '{"force": true}')])
    assert np.abs(np.float64(js_forced) - apply_temperature(js_raw, 2.5)).max() <= 1e-6
    python_raw = np.float32([r["probability"] for r in runtime.load(raw).score(texts, force=True)])
    python_forced = [r["probability"] for r in runtime.load(calibrated).score(texts, force=True)]
    assert np.abs(np.float64(python_forced) - apply_temperature(python_raw, 2.5)).max() <= 1e-7
    assert np.abs(np.float64(python_forced) - python_raw).max() > 0.05  # the temperature was applied, not ignored
    grid = np.float32([0, 1e-7, 1e-3, 0.1, 0.4999, 0.5, 0.5001, 0.9, 0.999, 0.9999999, 1])
    program = ("import('./web/src/screening.js').then(({applyTemperature}) => console.log(JSON.stringify("
               "JSON.parse(process.argv[1]).map((p) => applyTemperature(Math.fround(p), 2.5)))))")
    done = node("-e", program, json.dumps(grid.tolist()))
    assert done.returncode == 0, done.stderr
    assert np.abs(np.float64(json.loads(done.stdout)) - apply_temperature(grid, 2.5)).max() <= 1e-6


def test_scripts_agree_between_python_regex_and_javascript(tmp_path):
    """Every letter (\\p{L}) of the Basic and Supplementary Multilingual Planes: the script each of
    SCRIPTS claims, in Python's `regex` and in Node's \\p{Script=...}."""
    import regex

    letters = "".join(regex.findall(r"\p{L}", "".join(map(chr, range(0x20, 0x2FFFF)))))
    python = {name: [ord(c) for c in regex.findall(f"\\p{{Script={name}}}", letters)] for name in SCRIPTS}
    (tmp_path / "letters.txt").write_text(letters, encoding="utf-8")
    program = (
        "const fs = require('fs'); const text = fs.readFileSync(process.argv[1], 'utf8'); const out = {};"
        "for (const name of JSON.parse(process.argv[2])) out[name] = Array.from(text.matchAll("
        "new RegExp(`\\\\p{Script=${name}}`, 'gu')), (m) => m[0].codePointAt(0));"
        "console.log(JSON.stringify(out));"
    )
    done = node("-e", program, str(tmp_path / "letters.txt"), json.dumps(list(SCRIPTS)))
    assert done.returncode == 0, done.stderr
    js = json.loads(done.stdout)
    for name in SCRIPTS:
        differ = set(python[name]) ^ set(js[name])
        assert not differ, f"{name}: {len(differ)} letters differ, e.g. {sorted(differ)[:5]}"
        assert len(python[name]) > 0


def test_calibrate_command_fits_writes_and_the_runtime_applies(tmp_path):
    """attn-export calibrate on a copy of the nsmc bundle with 400 labelled rows: the manifest gets the
    temperature that minimizes those rows' NLL, the languages and the threshold; labels at 0.5 stay."""
    from trainer.calibrate import fit_temperature, nll
    from trainer.cli import main as export_cli
    from trainer.data import read_table

    bundle = tmp_path / "nsmc"
    shutil.copytree(runtime.shipped_bundles()["nsmc"], bundle, ignore=shutil.ignore_patterns("*.png"))
    rows = read_table(DATASETS / "nsmc" / "ratings_test.tsv.gz", text_column="document")
    data = tmp_path / "rows.tsv"
    with data.open("w", encoding="utf-8") as handle:
        handle.write("document\tlabel\n" + "".join(f"{t}\t{y}\n" for t, y in zip(rows.texts[:400], rows.labels[:400])))
    result = CliRunner().invoke(export_cli, ["calibrate", str(bundle), "--data", str(data), "--text-column", "document",
                                             "--languages", "ko"])
    assert result.exit_code == 0, result.output
    manifest = json.loads((bundle / "manifest.json").read_text())
    assert manifest["languages"] == ["ko"] and manifest["diagnostics"]["scripts"] == ["Hangul", "Han"]
    raw = runtime.load(runtime.shipped_bundles()["nsmc"])
    raw.temperature = 1.0
    p = raw.predict(rows.texts[:400])
    temperature = manifest["calibration"]["temperature"]
    assert temperature == pytest.approx(fit_temperature(p, rows.labels[:400]), rel=1e-5)
    for other in (temperature * 0.9, temperature * 1.1):  # a minimum of the validation NLL
        labels = rows.labels[:400]
        assert nll(apply_temperature(p, temperature), labels) < nll(apply_temperature(p, other), labels)
    calibrated = runtime.load(bundle).predict(rows.texts[:400])
    assert np.allclose(calibrated, apply_temperature(p, temperature), atol=1e-7)
    assert np.array_equal(calibrated >= 0.5, p >= 0.5)


def test_fit_temperature_recovers_a_known_temperature():
    rng = np.random.default_rng(0)
    logits = rng.normal(0, 4, 50_000)
    labels = (rng.random(50_000) < 1 / (1 + np.exp(-logits / 2.0))).astype(np.int32)
    from trainer.calibrate import fit_temperature

    assert fit_temperature(1 / (1 + np.exp(-logits)), labels) == pytest.approx(2.0, rel=0.03)
