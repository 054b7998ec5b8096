"""Real headless Chromium for tests (a pytest plugin, loaded by conftest.py).

Fixtures
  chromium   one selenium WebDriver per test session: Debian's `chromium` + `chromium-driver`,
             headless, no downloads (selenium-manager is never asked: both paths are given).
             Tests share it; each test navigates where it needs to.
  serve      a factory: `serve(folder=REPO)` starts a local HTTP server (127.0.0.1, a free port,
             a daemon thread) over `folder` and returns its base URL ending in "/". One server per
             folder per session; all are shut down at the end of the session.

Nothing here skips: a missing selenium, Chromium or chromedriver fails the test with one line that
says how to install it (`scripts/setup-test-env` does all of it). CHROMIUM_BINARY and CHROMEDRIVER
override where they are looked for.
"""

from __future__ import annotations

import functools
import http.server
import os
import shutil
import threading
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
SETUP_HINT = "run scripts/setup-test-env (as root it installs them with apt-get)"


def _find(env: str, names: list[str], extra: list[str]) -> str | None:
    if os.environ.get(env):
        return os.environ[env]
    for name in names:
        found = shutil.which(name)
        if found:
            return found
    return next((path for path in extra if os.path.isfile(path) and os.access(path, os.X_OK)), None)


def chromium_paths() -> tuple[str, str]:
    """(browser binary, chromedriver), or pytest.fail with the way to install them."""
    browser = _find("CHROMIUM_BINARY", ["chromium", "chromium-browser"], ["/usr/lib/chromium/chromium"])
    driver = _find("CHROMEDRIVER", ["chromedriver"], ["/usr/lib/chromium/chromedriver", "/usr/bin/chromedriver"])
    missing = [name for name, path in (("chromium", browser), ("chromium-driver", driver)) if not path]
    if missing:
        pytest.fail(f"the browser tests need {' and '.join(missing)} (real headless Chromium): {SETUP_HINT}",
                    pytrace=False)
    return browser, driver


def start_chromium(width: int = 1280, height: int = 900):
    """A new headless Chromium WebDriver (the caller quits it)."""
    try:
        from selenium import webdriver
        from selenium.webdriver.chrome.service import Service
    except ImportError:
        pytest.fail("the browser tests need selenium: pip install 'attn-onnx[dev]'", pytrace=False)
    browser, driver = chromium_paths()
    options = webdriver.ChromeOptions()
    options.binary_location = browser
    for argument in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--disable-gpu",
                     "--no-first-run", "--disable-extensions", f"--window-size={width},{height}"):
        options.add_argument(argument)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    return webdriver.Chrome(options=options, service=Service(executable_path=driver))


@pytest.fixture(scope="session")
def chromium():
    """A headless Chromium (selenium WebDriver) shared by the session's tests."""
    driver = start_chromium()
    driver.set_script_timeout(120)
    driver.set_page_load_timeout(60)
    yield driver
    driver.quit()


class _QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, format, *args):  # noqa: A002 - the base class's name
        pass


def start_server(folder: str | os.PathLike) -> tuple[http.server.ThreadingHTTPServer, str]:
    """An HTTP server over `folder` on 127.0.0.1 (a free port), served from a daemon thread."""
    handler = functools.partial(_QuietHandler, directory=str(folder))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server, f"http://127.0.0.1:{server.server_address[1]}/"


@pytest.fixture(scope="session")
def serve():
    """`serve(folder=REPO)` -> base URL ("http://127.0.0.1:PORT/") of a local server over folder."""
    servers: dict[Path, tuple] = {}

    def _serve(folder: str | os.PathLike = REPO) -> str:
        key = Path(folder).resolve()
        if key not in servers:
            servers[key] = start_server(key)
        return servers[key][1]

    yield _serve
    for server, _ in servers.values():
        server.shutdown()
        server.server_close()
