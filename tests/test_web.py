"""The browser path (web/): the JS tokenizer against the conformance corpus, the JS classifier against
the Python runtime, and the demo page in real headless Chromium.

Node.js runs the JS library (onnxruntime-web's WASM backend, the one Chromium runs too); the demo
test drives Debian's Chromium through selenium (tests/browser.py). Nothing skips: a missing Node,
npm package or Chromium fails with the command that installs it (scripts/setup-test-env).
"""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from web_corpus import corpus_rows, spec_variants, write_corpus

REPO = Path(__file__).resolve().parents[1]
WEB = REPO / "web"
SETUP = "run scripts/setup-test-env"


def node(*args: str, timeout: float = 300) -> subprocess.CompletedProcess:
    """Runs a Node script of web/ (fails the test, with what to do, when Node or the packages are missing)."""
    if not shutil.which("node"):
        pytest.fail(f"the web tests need Node.js (node): {SETUP}", pytrace=False)
    if not (WEB / "node_modules" / "onnxruntime-web" / "package.json").is_file():
        pytest.fail(f"web/node_modules is missing (npm ci in web/): {SETUP}", pytrace=False)
    return subprocess.run(["node", *args], capture_output=True, text=True, timeout=timeout, cwd=REPO)


def test_unicode_tables_are_this_pythons():
    """The JS tokenizer's str.lower() / \\w / \\s tables equal what the running Python computes."""
    done = subprocess.run([sys.executable, str(WEB / "tools" / "unicode_tables.py"), "--check"], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr


@pytest.mark.slow
def test_js_tokenizer_reproduces_the_conformance_corpus(imdb_test, tmp_path):
    """Every IMDB test review, the adversarial set under six specs, and all of Unicode: same tokens and ids."""
    shipped = runtime_tokenizer()
    tokenizers = spec_variants(shipped)
    corpus = tmp_path / "corpus.jsonl"
    rows = write_corpus(corpus, tokenizers, corpus_rows(tokenizers, list(imdb_test.texts)))
    assert rows > 25_000
    done = node("web/test/conformance.mjs", str(corpus))
    assert done.returncode == 0, done.stderr
    assert f'"rows":{rows}' in done.stdout


def runtime_tokenizer():
    import runtime

    return runtime.load("imdb").tokenizer


def _wait_scored(driver, text: str, timeout: float = 60):
    from selenium.webdriver.support.ui import WebDriverWait

    def scored(d):
        status = d.find_element("id", "status")
        if status.get_attribute("data-state") == "error":
            raise AssertionError(f"demo page failed: {status.text}")
        return status.get_attribute("data-state") == "scored" and status.get_attribute("data-text") == text

    WebDriverWait(driver, timeout).until(scored)


def _shown(driver) -> tuple[str, float, list[tuple[str, float]]]:
    spans = driver.find_elements("css selector", "#tokens span")
    words = [(span.text, float(span.get_attribute("data-weight"))) for span in spans]
    return driver.find_element("id", "label").text, float(driver.find_element("id", "probability").text), words


def test_demo_page_in_headless_chromium(chromium, serve, tmp_path):
    """The demo loads the int8 IMDB bundle from a local server and scores what the user types."""
    chromium.get(serve() + "web/demo/")
    review = chromium.find_element("id", "review")
    _wait_scored(chromium, review.get_attribute("value"))
    cases = [
        ("An absolute masterpiece: brilliant acting, a moving story and a wonderful score. I loved every minute.",
         "positive", "positive"),
        ("The worst film I have ever seen. Boring, stupid and a complete waste of time; awful acting.",
         "negative", "negative"),
    ]
    for text, expected, name in cases:
        review.clear()
        review.send_keys(text)
        _wait_scored(chromium, text)
        label, probability, words = _shown(chromium)
        assert label == expected, (text, label, probability)
        assert (probability >= 0.5) == (expected == "positive")
        assert [word for word, _ in words] == runtime_tokenizer().tokenize(text)
        assert abs(sum(weight for _, weight in words) - 1) < 1e-4, words
        assert all(weight >= 0 for _, weight in words)
        shot = tmp_path / f"demo-{name}.png"
        assert chromium.save_screenshot(str(shot)) and shot.stat().st_size > 10_000
    print(f"screenshots: {tmp_path}")
    errors = [entry for entry in chromium.get_log("browser") if entry["level"] == "SEVERE"]
    assert not errors, errors
