"""The README's and docs/*.md's code is executed: every ```python block runs as a script in a fresh interpreter,
from a temporary folder (so it must work from any directory), and a ```text block right after it
(with at most one short line such as "prints" between) must equal what it printed.

A block that opens "model_text.onnx" (the text graph, used with onnxruntime alone) runs in a folder
holding the text graph of the tiny trained bundle (conftest `text_bundle`), and may import nothing
but onnxruntime and numpy."""

import ast
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
FENCE = re.compile(r"^```(\w*)\n(.*?)^```\n", re.S | re.M)


DOCUMENTS = ["README.md", *sorted(path.relative_to(REPO).as_posix() for path in (REPO / "docs").glob("*.md"))]


def readme_examples(document: str = "README.md") -> list[tuple[str, str, str | None]]:
    """("file:line", code, expected output or None) for each python block of one document."""
    text = (REPO / document).read_text(encoding="utf-8")
    blocks = list(FENCE.finditer(text))
    examples = []
    for i, block in enumerate(blocks):
        if block.group(1) != "python":
            continue
        expected = None
        if i + 1 < len(blocks) and blocks[i + 1].group(1) == "text":
            between = text[block.end(): blocks[i + 1].start()].strip()
            if len(between.splitlines()) <= 1 and len(between) < 40:
                expected = blocks[i + 1].group(2)
        examples.append((f"{document}:{text.count(chr(10), 0, block.start()) + 1}", block.group(2), expected))
    return examples


EXAMPLES = [example for document in DOCUMENTS for example in readme_examples(document)]


def test_the_readme_has_examples_with_their_output():
    assert len(readme_examples()) >= 2 and all(expected for _, _, expected in readme_examples()[:1])
    assert len(DOCUMENTS) > 1 and len(EXAMPLES) > len(readme_examples())  # docs/ has python blocks too


@pytest.mark.parametrize("line, code, expected", EXAMPLES, ids=[line for line, _, _ in EXAMPLES])
def test_readme_example_runs_and_prints_what_it_shows(line, code, expected, tmp_path, request):
    if "model_text.onnx" in code:
        tree = ast.walk(ast.parse(code))
        imported = {name.split(".")[0] for node in tree for name in (
            [alias.name for alias in node.names] if isinstance(node, ast.Import)
            else [node.module or ""] if isinstance(node, ast.ImportFrom) else [])}
        assert imported <= {"onnxruntime", "numpy"}, f"{line} imports {sorted(imported)}"
        shutil.copy(request.getfixturevalue("text_bundle") / "model_text.onnx", tmp_path)
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(REPO), os.environ.get("PYTHONPATH", "")])}
    done = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, env=env, capture_output=True, text=True,
                          timeout=300)
    assert done.returncode == 0, f"{line}:\n{done.stderr}"
    if expected is not None:
        assert done.stdout == expected, f"{line} prints:\n{done.stdout}"


LINK = re.compile(r"\]\(([^)\s]+)\)")


def heading_anchors(path: Path) -> set[str]:
    """The anchors GitHub gives the headings of a markdown file (lowercase, punctuation dropped, spaces to -)."""
    text = FENCE.sub("", path.read_text(encoding="utf-8"))
    titles = re.findall(r"^#{1,6} (.+)$", text, re.M)
    return {re.sub(r"[^\w\- ]", "", title.strip().lower()).replace(" ", "-") for title in titles}


def test_relative_links_in_readme_and_docs_point_at_a_file_and_a_heading():
    broken = []
    for document in DOCUMENTS:
        text = FENCE.sub("", (REPO / document).read_text(encoding="utf-8"))
        for target in LINK.findall(text):
            if re.match(r"[a-z]+:", target):  # http:, https:, mailto:
                continue
            name, _, anchor = target.partition("#")
            path = (REPO / document).parent / name if name else REPO / document
            if not path.exists() or (anchor and path.suffix == ".md" and anchor not in heading_anchors(path)):
                broken.append(f"{document}: ({target})")
    assert broken == []


def test_the_runtime_docstring_runs_and_prints_what_it_shows():
    """`help(runtime)` shows a session: run as a doctest (ELLIPSIS for floats), it prints what it shows."""
    import doctest

    import runtime

    result = doctest.testmod(runtime, optionflags=doctest.ELLIPSIS, report=True)
    assert result.attempted >= 5 and result.failed == 0, result
