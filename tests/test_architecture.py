"""The house rules of docs/ARCHITECTURE.md, checked by reading the source (``ast``).

Every ``import`` in ``liveaffect/`` -- at module level or inside a function -- is an edge
from one part (a subpackage or top-level module) to another, and so is
``importlib.import_module("liveaffect...")`` with a literal name. An edge must point down
the allowed directions below, and the module graph must have no cycle.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest
from conftest import REPO

PACKAGE = REPO / "liveaffect"

BASE = {"errors", "labels", "types", "preprocess", "tta", "bundle", "hardware", "files"}
"""The bottom layer: what every layer may import."""

ALLOWED: dict[str, set[str]] = {
    "cli": {"errors"},  # finds liveaffect.commands.* by name, never by import
    "__main__": {"cli"},
    "commands": {
        "runtime",
        "analysis",
        "training",
        "evaluation",
        "engines",
        "data",
        "model",
        *BASE,
    },
    "runtime": {"engines", *BASE},
    "analysis": {"runtime", "engines", "evaluation", "data", *BASE},  # data.io: gs:// output
    "training": {"evaluation", "engines", "data", "model", *BASE},
    "evaluation": {"engines", "data", *BASE},
    "engines": {"model", *BASE},
    "data": {*BASE},
    "model": {"labels", "errors", "files"},
    "bundle": {"labels", "preprocess", "tta", "errors", "model"},
    "preprocess": {"errors"},
    "tta": {"errors"},
    "labels": {"errors"},
    "types": {"errors"},
    "hardware": set(),
    "files": set(),
    "errors": set(),
}
"""Part -> the other parts it may import. ``bundle`` -> ``model`` is the one upward edge:
loading a ``.keras`` file needs the model's custom loss classes
(``liveaffect.model.custom_objects``)."""

KNOWN_CYCLES: set[frozenset[str]] = set()
"""Cycles tolerated for now (none left)."""


def modules() -> dict[str, Path]:
    """Dotted module name -> file, for every module of the package."""
    out = {}
    for path in sorted(PACKAGE.rglob("*.py")):
        parts = list(path.relative_to(REPO).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts = parts[:-1]
        out[".".join(parts)] = path
    return out


def imports(name: str, path: Path, known: set[str]) -> set[str]:
    """The liveaffect modules that ``name`` imports anywhere in its source."""
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            targets = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join([*anchor, *([base] if base else [])])
            # `from pkg import sub` imports the submodule pkg.sub when there is one
            targets = [
                f"{base}.{a.name}" if f"{base}.{a.name}" in known else base for a in node.names
            ]
        elif isinstance(node, ast.Call) and (named := _imported_by_name(node)):
            targets = [named]
        else:
            continue
        found.update(t for t in targets if t == "liveaffect" or t.startswith("liveaffect."))
    found.discard(name)
    return found


def _imported_by_name(call: ast.Call) -> str | None:
    """The module that ``importlib.import_module("liveaffect.x")`` or ``__import__(...)``
    names as a literal string (an import all the same); None for any other call."""
    func = call.func
    name = func.attr if isinstance(func, ast.Attribute) else getattr(func, "id", None)
    if name not in ("import_module", "__import__") or not call.args:
        return None
    first = call.args[0]
    return first.value if isinstance(first, ast.Constant) and isinstance(first.value, str) else None


def part(module: str) -> str:
    pieces = module.split(".")
    return pieces[1] if len(pieces) > 1 else "liveaffect"


def graph() -> dict[str, set[str]]:
    mods = modules()
    known = set(mods)
    return {name: imports(name, path, known) & known for name, path in mods.items()}


def forbidden_edges(edges: dict[str, set[str]]) -> list[str]:
    bad = []
    for src, targets in sorted(edges.items()):
        here = part(src)
        for dst in sorted(targets):
            there = part(dst)
            if there == here or there == "liveaffect":
                continue
            if there not in ALLOWED.get(here, set()):
                bad.append(f"{src} imports {dst} ({here} -> {there} is not allowed)")
    return bad


def cycles(edges: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components with more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in edges.get(v, ()):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for v in sorted(edges):
        if v not in index:
            visit(v)
    return found


def test_every_part_has_rules():
    parts = {part(m) for m in modules()} - {"liveaffect"}
    assert parts <= set(ALLOWED), f"parts without import rules: {sorted(parts - set(ALLOWED))}"


def test_imports_point_down():
    bad = forbidden_edges(graph())
    assert not bad, "forbidden imports (see docs/ARCHITECTURE.md):\n" + "\n".join(bad)


def test_no_import_cycles():
    found = [c for c in cycles(graph()) if frozenset(c) not in KNOWN_CYCLES]
    assert not found, "import cycles:\n" + "\n".join(" <-> ".join(c) for c in found)


@pytest.mark.parametrize(
    ("edges", "bad", "cyclic"),
    [
        ({"liveaffect.runtime.live": {"liveaffect.data.io"}}, 1, 0),
        ({"liveaffect.model.mtl": {"liveaffect.commands.live"}}, 1, 0),
        ({"liveaffect.commands.live": {"liveaffect.runtime.live"}}, 0, 0),
        (
            {
                "liveaffect.runtime.a": {"liveaffect.runtime.b"},
                "liveaffect.runtime.b": {"liveaffect.runtime.a"},
            },
            0,
            1,
        ),
    ],
)
def test_the_checks_catch_what_they_should(edges, bad, cyclic):
    assert len(forbidden_edges(edges)) == bad
    assert len(cycles(edges)) == cyclic


def test_imports_reads_every_import_in_the_source(tmp_path):
    """``imports`` sees an import wherever it stands -- module level, in a function, in a
    method, under an ``if`` -- and resolves relative and ``from package import module``
    forms and modules imported by a literal name, so an edge cannot hide from the checks
    above by moving into a function."""
    source = tmp_path / "shotcut.py"
    source.write_text(
        "import liveaffect.errors\n"
        "def f():\n"
        "    from liveaffect.data import io\n"
        "class C:\n"
        "    def m(self):\n"
        "        from ..commands import live\n"
        "if True:\n"
        "    from . import tracker\n"
        "def g():\n"
        "    def h():\n"
        "        from ..training.state import TrainState\n"
        "def by_name():\n"
        "    import importlib\n"
        "    importlib.import_module('liveaffect.evaluation.metrics')\n"
        "    __import__('liveaffect.model')\n"
    )
    known = {
        "liveaffect.errors",
        "liveaffect.data",
        "liveaffect.data.io",
        "liveaffect.commands",
        "liveaffect.commands.live",
        "liveaffect.runtime",
        "liveaffect.runtime.tracker",
        "liveaffect.training.state",
        "liveaffect.evaluation.metrics",
        "liveaffect.model",
    }
    assert imports("liveaffect.runtime.shotcut", source, known) == {
        "liveaffect.errors",
        "liveaffect.data.io",
        "liveaffect.commands.live",
        "liveaffect.runtime.tracker",
        "liveaffect.training.state",
        "liveaffect.evaluation.metrics",
        "liveaffect.model",
    }
