"""No two modules of the project import each other, even through imports inside functions.

import-linter's contracts see module-level imports; a cycle hidden in a function body still
makes the code's order of loading matter and the rooms impossible to read apart. This reads
every import statement of both packages with `ast` (no import runs) and looks for strongly
connected groups of modules.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
PACKAGES = ("celery_core", "pixcrawler_gui")


def _modules() -> dict[str, Path]:
    found: dict[str, Path] = {}
    for package in PACKAGES:
        for path in (REPO / package).rglob("*.py"):
            name = ".".join(path.relative_to(REPO).with_suffix("").parts)
            found[name.removesuffix(".__init__")] = path
    return found


def _imports(path: Path, modules: dict[str, Path], me: str) -> set[str]:
    """The project modules `me` imports anywhere in its file (a package's own parents aside)."""
    targets: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.ImportFrom) and node.module and not node.level:
            names = [node.module] + [f"{node.module}.{alias.name}" for alias in node.names]
        elif isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        else:
            continue
        for name in names:
            while name and name not in modules:
                name = name.rpartition(".")[0]
            # Importing a submodule runs its parents' __init__ anyway: not an edge worth a cycle.
            if name and name != me and not me.startswith(name + "."):
                targets.add(name)
    return targets


def import_cycles() -> list[list[str]]:
    modules = _modules()
    graph = {name: _imports(path, modules, name) for name, path in modules.items()}
    # Tarjan's strongly connected components, iteratively (no recursion limit to meet).
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    cycles: list[list[str]] = []
    for root in graph:
        if root in index:
            continue
        work = [(root, iter(sorted(graph[root])))]
        index[root] = low[root] = len(index)
        stack.append(root)
        on_stack.add(root)
        while work:
            node, children = work[-1]
            child = next(children, None)
            if child is not None:
                if child not in index:
                    index[child] = low[child] = len(index)
                    stack.append(child)
                    on_stack.add(child)
                    work.append((child, iter(sorted(graph[child]))))
                elif child in on_stack:
                    low[node] = min(low[node], index[child])
                continue
            work.pop()
            if work:
                parent = work[-1][0]
                low[parent] = min(low[parent], low[node])
            if low[node] == index[node]:
                group = []
                while True:
                    member = stack.pop()
                    on_stack.discard(member)
                    group.append(member)
                    if member == node:
                        break
                if len(group) > 1:
                    cycles.append(sorted(group))
    return cycles


def test_no_module_imports_another_that_imports_it_back() -> None:
    assert import_cycles() == []


def test_the_check_finds_a_cycle_hidden_in_a_function(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The check itself can fail: two modules importing each other inside functions."""
    package = tmp_path / "celery_core"
    package.mkdir()
    (package / "__init__.py").write_text("")
    (package / "a.py").write_text("def f():\n    from celery_core import b\n")
    (package / "b.py").write_text("def g():\n    import celery_core.a\n")
    monkeypatch.setitem(globals(), "REPO", tmp_path)
    assert import_cycles() == [["celery_core.a", "celery_core.b"]]
