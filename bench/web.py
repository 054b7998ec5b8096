"""The browser path measured in headless Chromium, beside the Python runtime on the same reviews.

    python -m bench web                      # needs scripts/setup-test-env (npm ci, chromium, chromedriver)

For the shipped fp32 and int8 IMDB bundles: the demo page's load time in a fresh headless Chromium
(page + onnxruntime-web WASM + model fetch + sha256 + session + first score), and batch-1 latency p50
over median-length IMDB test reviews, in the page (onnxruntime-web WASM, one thread: a page without
cross-origin isolation has no WASM threads) and in the Python runtime (all cores, and one thread).
"""

from __future__ import annotations

import functools
import http.server
import os
import shutil
import statistics
import threading
import time
from pathlib import Path

import click
import numpy as np

REPO = Path(__file__).resolve().parents[1]
BUNDLES = {"fp32": "artifacts/imdb-bilstm-attention", "int8": "artifacts/imdb-bilstm-attention-int8"}

_LATENCY_SCRIPT = """
const [texts, repeats, done] = arguments;
(async () => {
  const model = window.attnDemo.model;
  for (const text of texts.slice(0, 3)) await model.classify([text]);
  const times = [];
  for (let r = 0; r < repeats; r++) {
    for (const text of texts) {
      const started = performance.now();
      await model.classify([text]);
      times.push(performance.now() - started);
    }
  }
  done({times, loadMs: window.attnDemo.loadMs});
})().catch((error) => done({error: String(error)}));
"""


def _chromium():
    try:
        from selenium import webdriver
        from selenium.webdriver.chrome.service import Service
    except ImportError:
        raise click.ClickException("bench web needs selenium: pip install 'attn-onnx[dev]'") from None
    browser = os.environ.get("CHROMIUM_BINARY") or shutil.which("chromium") or shutil.which("chromium-browser")
    driver = os.environ.get("CHROMEDRIVER") or shutil.which("chromedriver")
    if not browser or not driver:
        raise click.ClickException("bench web needs chromium and chromium-driver: run scripts/setup-test-env")
    if not (REPO / "web" / "node_modules" / "onnxruntime-web").is_dir():
        raise click.ClickException("web/node_modules is missing: run scripts/setup-test-env (npm ci in web/)")
    options = webdriver.ChromeOptions()
    options.binary_location = browser
    for argument in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--disable-gpu",
                     "--window-size=1280,900"):
        options.add_argument(argument)
    chrome = webdriver.Chrome(options=options, service=Service(executable_path=driver))
    chrome.set_script_timeout(600)
    return chrome


class _Quiet(http.server.SimpleHTTPRequestHandler):
    def log_message(self, format, *args):  # noqa: A002
        pass


def median_reviews(data: str, count: int, tokenizer) -> tuple[list[str], int]:
    """`count` IMDB test reviews within 10 % of the median token count (seeded order)."""
    from runtime.io.tables import TableReader

    texts = [record["text"] for _, record in TableReader(data).records()]
    order = np.random.default_rng(0).permutation(len(texts))[:2000]
    sample = [texts[i] for i in order]
    lengths = np.array([len(tokenizer.tokenize(t)) for t in sample])
    median = int(np.median(lengths))
    return [t for t, n in zip(sample, lengths) if abs(n - median) <= 0.1 * median][:count], median


def python_p50(bundle: str, texts: list[str], repeats: int, threads: int) -> float:
    import runtime

    model = runtime.load(str(REPO / bundle), provider="cpu", threads=threads)
    for text in texts[:3]:
        model.predict([text])
    times = []
    for _ in range(repeats):
        for text in texts:
            started = time.perf_counter()
            model.predict([text])
            times.append(time.perf_counter() - started)
    return 1000 * statistics.median(times)


def chromium_figures(base: str, bundle: str, texts: list[str], repeats: int) -> dict:
    """Fresh Chromium: load the demo on `bundle`, then time batch-1 classify calls in the page."""
    from selenium.webdriver.support.ui import WebDriverWait

    chrome = _chromium()
    try:
        started = time.perf_counter()
        chrome.get(f"{base}web/demo/?bundle=../../{bundle}/")
        WebDriverWait(chrome, 120).until(lambda d: d.find_element("id", "status").get_attribute("data-state")
                                         != "loading")
        state = chrome.find_element("id", "status")
        if state.get_attribute("data-state") != "scored":
            raise click.ClickException(f"the demo page did not load {bundle}: {state.text}")
        page_s = time.perf_counter() - started
        result = chrome.execute_async_script(_LATENCY_SCRIPT, texts, repeats)
        if "error" in result:
            raise click.ClickException(f"timing in Chromium failed: {result['error']}")
        return {"page_s": page_s, "model_s": result["loadMs"] / 1000, "p50_ms": statistics.median(result["times"]),
                "version": chrome.capabilities.get("browserVersion", "?")}
    finally:
        chrome.quit()


@click.command("web")
@click.option("--data", type=click.Path(exists=True), default="../shared/datasets/imdb/test.csv.gz", show_default=True)
@click.option("--reviews", type=int, default=30, show_default=True, help="Median-length reviews timed.")
@click.option("--repeats", type=int, default=3, show_default=True, help="Passes over the reviews (p50 of all calls).")
def web(data, reviews, repeats):
    """Headless Chromium (onnxruntime-web WASM) vs the Python runtime: load time and batch-1 p50, fp32 and int8."""
    import runtime

    texts, median = median_reviews(data, reviews, runtime.load(str(REPO / BUNDLES["fp32"])).tokenizer)
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), functools.partial(_Quiet, directory=str(REPO)))
    threading.Thread(target=server.serve_forever, daemon=True).start()
    base = f"http://127.0.0.1:{server.server_address[1]}/"
    rows = {}
    try:
        for name, bundle in BUNDLES.items():
            click.echo(f"timing {name} in Chromium ...", err=True)
            rows[name] = chromium_figures(base, bundle, texts, repeats)
            click.echo(f"timing {name} in Python ...", err=True)
            rows[name]["python_ms"] = python_p50(bundle, texts, repeats, threads=0)
            rows[name]["python1_ms"] = python_p50(bundle, texts, repeats, threads=1)
    finally:
        server.shutdown()
    version = next(iter(rows.values()))["version"]
    click.echo(f"{len(texts)} IMDB test reviews of median length ({median} tokens) x {repeats}; headless Chromium "
               f"{version}, onnxruntime-web WASM 1 thread; Python onnxruntime CPU, {os.cpu_count()} cores; "
               f"load average {os.getloadavg()[0]:.1f} (a busy machine inflates every figure)")
    click.echo("| bundle | page + model load s | of which model s | Chromium batch-1 p50 ms "
               "| Python p50 ms (all cores) | Python p50 ms (1 thread) | Chromium / Python (1 thread) |")
    click.echo("|---|---|---|---|---|---|---|")
    for name, r in rows.items():
        click.echo(f"| {name} | {r['page_s']:.2f} | {r['model_s']:.2f} | {r['p50_ms']:.2f} | {r['python_ms']:.2f} | "
                   f"{r['python1_ms']:.2f} | {r['p50_ms'] / r['python1_ms']:.1f} |")
