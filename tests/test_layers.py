"""The import layering, checked from the source (an AST pass: every import, lazy ones inside
functions included), so a cycle, an upward import or Click in a library module fails here.

The tables below are the architecture as data. A new runtime module gets a row in RUNTIME_LAYERS
(the test says so); a module that moves (the review's runtime/{models,io,engines,cli}/ layout)
changes a row here, not the checker. Run alone: python -m pytest tests/test_layers.py
"""

from __future__ import annotations

import ast
import functools
import shutil
from dataclasses import dataclass
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
PACKAGES = ("bench", "trainer", "runtime")  # top to bottom: each may import only the ones after it

# runtime/, top to bottom. A module may import modules of lower layers and of its own group; the
# groups of one layer are independent of each other (io knows no model, models know no file).
RUNTIME_LAYERS = (
    # the commands (attn-score, attn-translate, attn-serve): the only runtime modules that import Click;
    # nothing imports them
    {"cli": ("runtime.cli", "runtime.cli.__main__", "runtime.cli.score", "runtime.cli.translate", "runtime.cli.common",
             "runtime.cli.options", "runtime.cli.report", "runtime.cli.plots", "runtime.cli.serve")},
    # the HTTP service under attn-serve (the `serve` extra): app, batching, limits, metrics, ServerProcess
    {"serve": ("runtime.serve", "runtime.serve.app", "runtime.serve.metrics", "runtime.serve.models",
               "runtime.serve.batcher", "runtime.serve.limits", "runtime.serve.process")},
    # how rows get through a model: the local engine (score_file / translate_file) and Ray Data
    {"engines": ("runtime.engines", "runtime.engines.local", "runtime.engines.ray", "runtime.distributed")},
    {"api": ("runtime",)},  # runtime/__init__.py: load() and the public names
    {"catalog": ("runtime.catalog",)},  # the shipped bundles: names, where they are, --list-models
    {"models": ("runtime.models", "runtime.models.classifier", "runtime.models.translator", "runtime.models.search",
                "runtime.models.segment", "runtime.models.copying"),
     "io": ("runtime.io", "runtime.io.tables", "runtime.io.parquet", "runtime.io.rows", "runtime.io.columns",
            "runtime.io.atomic", "runtime.io.diagnostics", "runtime.io.writers", "runtime.io.formats",
            "runtime.io.inputs")},
    {"bundle": ("runtime.bundle",)},
    {"session": ("runtime.session",), "tokenizer": ("runtime.tokenizer",), "progress": ("runtime.progress",),
     "screening": ("runtime.screening",)},  # per-row status and calibration: numbers and Unicode only
    {"errors": ("runtime.errors",)},
)
IO = RUNTIME_LAYERS[5]["io"]

# (importers, what they must not import, why); a name covers its submodules ("tensorflow.keras")
FORBIDDEN = (
    (("runtime",), ("tensorflow", "keras", "tf2onnx", "onnx", "tf_keras"), "runtime runs without the train extra"),
    (IO, ("runtime.bundle", "runtime.session", "runtime.tokenizer"), "io knows no model"),
    (("trainer", "bench"), ("runtime.cli",), "apps and the trainer use the library, not the command"),
)
CLICK_IMPORTERS = ("runtime.cli", "trainer.cli", "trainer.console", "bench")  # and nothing else


@dataclass(frozen=True)
class Import:
    source: str  # the importing module
    target: str  # a project module, or an outside top-level name ("click")
    line: int
    names: tuple[str, ...]  # for `from target import names`


def modules(root: Path) -> dict[str, Path]:
    """Dotted module name -> file, for every .py under the packages (a package is its __init__)."""
    found = {}
    for package in PACKAGES:
        for path in sorted((root / package).rglob("*.py")):
            parts = path.relative_to(root).with_suffix("").parts
            found[".".join(parts[:-1] if parts[-1] == "__init__" else parts)] = path
    return found


def _resolve(name: str, known: dict[str, Path]) -> str:
    """The longest known module `name` lies in, else its top-level name (an outside package)."""
    parts = name.split(".")
    for end in range(len(parts), 0, -1):
        if ".".join(parts[:end]) in known:
            return ".".join(parts[:end])
    return parts[0]


def _absolute(node: ast.ImportFrom, source: str, path: Path) -> str:
    if not node.level:
        return node.module or ""
    package = source.split(".") if path.name == "__init__.py" else source.split(".")[:-1]
    base = package[: len(package) - node.level + 1]
    return ".".join(base + ([node.module] if node.module else []))


@functools.lru_cache(maxsize=None)
def _import_nodes(text: str, filename: str) -> tuple:
    """The import statements of one module's text (cached: the injected-import cases re-read a copy
    of the repository whose files are the same but one)."""
    return tuple(node for node in ast.walk(ast.parse(text, filename)) if isinstance(node, (ast.Import, ast.ImportFrom)))


def imports(root: Path) -> list[Import]:
    """Every import statement of every module, resolved to the module it loads."""
    known, found = modules(root), []
    for source, path in known.items():
        for node in _import_nodes(path.read_text(encoding="utf-8"), path.name):
            if isinstance(node, ast.Import):
                found += [Import(source, _resolve(alias.name, known), node.lineno, ()) for alias in node.names]
            elif isinstance(node, ast.ImportFrom):
                module = _absolute(node, source, path)
                for alias in node.names:  # `from runtime import catalog` loads the module runtime.catalog
                    target = _resolve(f"{module}.{alias.name}", known)
                    found.append(Import(source, target, node.lineno, (alias.name,)))
    return found


def _within(module: str, prefixes) -> bool:
    return any(module == prefix or module.startswith(prefix + ".") for prefix in prefixes)


def _place(module: str) -> tuple[int, str] | None:
    for depth, layer in enumerate(RUNTIME_LAYERS):
        for group, members in layer.items():
            if module in members:
                return depth, group
    return None


def _where(root: Path, item: Import) -> str:
    return f"{modules(root)[item.source].relative_to(root)}:{item.line}: {item.source} imports {item.target}"


def layer_violations(root: Path) -> list[str]:
    known, problems = modules(root), []
    for item in imports(root):
        if item.target not in known or item.target == item.source:
            continue
        source_rank = PACKAGES.index(item.source.split(".")[0])
        if PACKAGES.index(item.target.split(".")[0]) < source_rank:
            problems.append(f"{_where(root, item)} (upward: {' > '.join(PACKAGES)})")
        source, target = _place(item.source), _place(item.target)
        if source and target and (target[0] < source[0] or (target[0] == source[0] and target[1] != source[1])):
            kind = "upward" if target[0] < source[0] else f"sibling groups {source[1]} | {target[1]}"
            problems.append(f"{_where(root, item)} ({kind})")
    return problems


def rule_violations(root: Path) -> list[str]:
    problems = []
    for item in imports(root):
        for importers, banned, why in FORBIDDEN:
            if _within(item.source, importers) and _within(item.target, banned) and item.target != item.source:
                problems.append(f"{_where(root, item)} ({why})")
        if item.target == "click" and not _within(item.source, CLICK_IMPORTERS):
            problems.append(f"{_where(root, item)} (only {', '.join(CLICK_IMPORTERS)} import Click)")
        private = [name for name in item.names if name.startswith("_") and not name.startswith("__")]
        if private and item.target.split(".")[0] in PACKAGES and item.target != item.source:
            problems.append(f"{_where(root, item)} private name {', '.join(private)} from another module")
    return problems


def cycles(root: Path) -> list[list[str]]:
    """Strongly connected components of more than one module (Tarjan), lazy imports included."""
    graph: dict[str, set[str]] = {module: set() for module in modules(root)}
    for item in imports(root):
        if item.target in graph and item.target != item.source:
            graph[item.source].add(item.target)
    index, low, stack, on_stack, found = {}, {}, [], set(), []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for successor in sorted(graph[node]):
            if successor not in index:
                visit(successor)
                low[node] = min(low[node], low[successor])
            elif successor in on_stack:
                low[node] = min(low[node], index[successor])
        if low[node] == index[node]:
            component = []
            while not component or component[-1] != node:
                component.append(stack.pop())
                on_stack.discard(component[-1])
            if len(component) > 1:
                found.append(sorted(component))

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return found


def unplaced(root: Path) -> tuple[set[str], set[str]]:
    """(runtime modules RUNTIME_LAYERS lacks, names in it that are no module)."""
    runtime_modules = {name for name in modules(root) if name.split(".")[0] == "runtime"}
    placed = {module for layer in RUNTIME_LAYERS for members in layer.values() for module in members}
    return runtime_modules - placed, placed - runtime_modules


def all_problems(root: Path) -> list[str]:
    return layer_violations(root) + rule_violations(root) + [f"cycle: {' <-> '.join(c)}" for c in cycles(root)]


# === The checks on this repository ===
def test_every_runtime_module_has_a_layer():
    missing, stale = unplaced(REPO)
    assert missing == set(), "add the new module to RUNTIME_LAYERS"
    assert stale == set(), "RUNTIME_LAYERS names a module that is gone"


def test_no_upward_import():
    assert layer_violations(REPO) == []


def test_no_forbidden_import_click_only_in_commands_no_private_names():
    assert rule_violations(REPO) == []


def test_no_import_cycle():
    assert cycles(REPO) == []


# === The checker fails on what it guards against ===
@pytest.fixture
def copy_of_repo(tmp_path) -> Path:
    for package in PACKAGES:
        shutil.copytree(REPO / package, tmp_path / package, ignore=shutil.ignore_patterns("*.pyc", "__pycache__"),
                        dirs_exist_ok=True)
    return tmp_path


INJECTED = [  # (file, line appended inside a function (lazy) or at the top, what the report must say)
    ("runtime/io/tables.py", "def _f():\n    from runtime.cli import main\n",
     "runtime.io.tables imports runtime.cli (upward)"),
    ("runtime/io/tables.py", "from runtime.models.classifier import Classifier\n",
     "runtime.io.tables imports runtime.models.classifier (sibling groups io | models)"),
    ("runtime/io/rows.py", "import runtime.bundle\n", "runtime.io.rows imports runtime.bundle (io knows no model)"),
    ("runtime/session.py", "def _f():\n    import tensorflow as tf\n", "imports tensorflow (runtime runs without"),
    ("runtime/session.py", "import trainer.fit\n", "runtime.session imports trainer.fit (upward: bench > trainer"),
    ("runtime/engines/ray.py", "import click\n", "runtime.engines.ray imports click (only runtime.cli"),
    ("trainer/fit.py", "from runtime.cli import main\n", "trainer.fit imports runtime.cli (apps and the trainer"),
    ("trainer/fit.py", "from runtime.io.tables import _next_row\n", "private name _next_row from another module"),
    ("bench/distributed.py", "def _f():\n    from bench.__main__ import main\n",
     "cycle: bench.__main__ <-> bench.distributed"),
]


@pytest.mark.parametrize("file, code, expected", INJECTED, ids=[f"{f}:{e.split(' (')[0]}" for f, _, e in INJECTED])
def test_checker_fails_on_an_injected_import(copy_of_repo, file, code, expected):
    assert all_problems(copy_of_repo) == []  # the copy is clean ...
    with open(copy_of_repo / file, "a", encoding="utf-8") as handle:
        handle.write("\n\n" + code)
    problems = all_problems(copy_of_repo)
    assert any(expected in problem for problem in problems), problems  # ... until the import is added


def test_checker_fails_on_a_new_module_without_a_layer(copy_of_repo):
    assert unplaced(copy_of_repo) == (set(), set())
    (copy_of_repo / "runtime" / "extra.py").write_text("import runtime.io.tables\n")
    assert unplaced(copy_of_repo) == ({"runtime.extra"}, set())
