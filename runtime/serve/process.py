"""attn-serve as a child process (a sidecar started from Python, the tests, `python -m bench serve`):
start it on a free port and wait until /readyz answers.

    with ServerProcess(["--model", "imdb"]) as server:
        server.url          # 'http://127.0.0.1:41234'
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from pathlib import Path

_LISTENING = re.compile(r"attn-serve: serving .* on (http://\S+) with")


class ServerProcess:
    """`python -m runtime.cli.serve ARGS --port 0`; its stderr goes to `log` (a temporary file by default)."""

    def __init__(self, args: list[str], log: str | Path | None = None, start_timeout_s: float = 120.0,
                 env: dict | None = None):
        self.args, self.start_timeout_s = list(args), start_timeout_s
        self.log = Path(log) if log else Path(tempfile.mkstemp(prefix="attn-serve-", suffix=".log")[1])
        self.env = env
        self.process: subprocess.Popen | None = None
        self.url = ""

    def __enter__(self) -> ServerProcess:
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()

    def start(self) -> ServerProcess:
        command = [sys.executable, "-m", "runtime.cli.serve", *self.args, "--port", "0"]
        with open(self.log, "wb") as log:
            self.process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=log,
                                            env=self.env or os.environ.copy())
        deadline = time.monotonic() + self.start_timeout_s
        while not self.url:
            self.check_alive("before listening")
            if time.monotonic() > deadline:
                raise TimeoutError(f"attn-serve did not start within {self.start_timeout_s:g} s: "
                                   f"{self.stderr()[-500:]}")
            found = _LISTENING.search(self.stderr())
            self.url = found.group(1) if found else ""
            time.sleep(0.05)
        while not self.ready():
            self.check_alive("before /readyz answered")
            if time.monotonic() > deadline:
                raise TimeoutError(f"attn-serve at {self.url} not ready within {self.start_timeout_s:g} s")
            time.sleep(0.05)
        return self

    def ready(self) -> bool:
        try:
            with urllib.request.urlopen(self.url + "/readyz", timeout=5) as response:
                return response.status == 200
        except (urllib.error.URLError, ConnectionError, TimeoutError):
            return False

    def check_alive(self, when: str) -> None:
        if self.process.poll() is not None:
            raise RuntimeError(f"attn-serve exited with {self.process.returncode} {when}: {self.stderr()[-800:]}")

    def stderr(self) -> str:
        return self.log.read_text(errors="replace")

    @property
    def port(self) -> int:
        return int(self.url.rsplit(":", 1)[1])

    def terminate(self) -> None:
        """SIGTERM: the server drains and exits."""
        self.process.send_signal(signal.SIGTERM)

    def stop(self, timeout_s: float = 30.0) -> int | None:
        """SIGTERM, then the exit status (SIGKILL past `timeout_s`)."""
        if self.process is None:
            return None
        if self.process.poll() is None:
            self.terminate()
            try:
                self.process.wait(timeout_s)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        return self.process.returncode
