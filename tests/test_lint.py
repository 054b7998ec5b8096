"""`ruff check` over the repository, as configured in pyproject.toml ([tool.ruff]: 120 columns, pycodestyle,
pyflakes, import order), so the test command lints too."""

import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def _ruff(target: str, cwd: Path) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "ruff", "check", "--no-cache", "--output-format", "concise", target],
                          capture_output=True, text=True, cwd=cwd)


def test_ruff_check_passes():
    done = _ruff(str(REPO), cwd=REPO)
    assert "No module named ruff" not in done.stderr, "ruff is in the dev extra: pip install -e '.[dev]'"
    assert done.returncode == 0, done.stdout + done.stderr


def test_ruff_finds_a_long_line_in_a_new_file(tmp_path):
    """The check can fail: a new file with a 121-column line and an unused import is reported."""
    (tmp_path / "pyproject.toml").write_text((REPO / "pyproject.toml").read_text(encoding="utf-8"), encoding="utf-8")
    (tmp_path / "new.py").write_text("import os\n\nx = '" + "a" * 115 + "'\n", encoding="utf-8")
    done = _ruff(".", cwd=tmp_path)
    assert done.returncode == 1, done.stdout + done.stderr
    assert "new.py:1:8: F401" in done.stdout and "new.py:3:121: E501" in done.stdout, done.stdout
