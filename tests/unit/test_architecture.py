"""The rules that keep the house the right way up (docs/ARCHITECTURE.md), checked on the
code itself: imports run one way down the layers, no import circle, no long module, and
no probing of places with getattr where the engine or the CLI uses them."""

from __future__ import annotations

import ast
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[2] / "archiver"
LAYERS = {"cli": 5, "serve": 5, "engine": 4, "places": 3, "blobs": 2, "model": 1, "schema": 1}
"""Who may import whom: a module imports only from its own layer or the ones below it
(``errors`` is below them all; the package itself and ``__main__`` are faces above)."""
MOST_LINES = 400


def _modules() -> dict[str, Path]:
    found = {}
    for path in PACKAGE.rglob("*.py"):
        parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
        name = ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
        found[name] = path
    return found


def _imports(path: Path, modules: dict[str, Path]) -> set[str]:
    """Every archiver module ``path`` imports, at the top or inside a function."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            found |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            for alias in node.names:
                full = f"{node.module}.{alias.name}"
                found.add(full if full in modules else node.module)
    return {name for name in found if name in modules}


def _graph() -> dict[str, set[str]]:
    modules = _modules()
    return {name: _imports(path, modules) - {name} for name, path in modules.items()}


def _layer(module: str) -> int | None:
    parts = module.split(".")
    if module == "archiver.errors":
        return 0
    return LAYERS.get(parts[1]) if len(parts) > 1 else None


def test_imports_run_down_the_layers() -> None:
    upward = [
        f"{module} imports {imported}"
        for module, imports in _graph().items()
        for imported in imports
        if (here := _layer(module)) is not None
        and (there := _layer(imported)) is not None
        and there > here
    ]
    assert upward == []


def test_no_place_imports_the_engine() -> None:
    graph = _graph()
    wrong = [
        f"{m} imports {i}"
        for m in graph
        if m.startswith("archiver.places")
        for i in graph[m]
        if i.startswith(("archiver.engine", "archiver.cli"))
    ]
    assert wrong == []


def test_no_import_circle() -> None:
    graph = _graph()
    circles: list[str] = []
    state: dict[str, int] = {}
    path: list[str] = []

    def visit(module: str) -> None:
        state[module] = 1
        path.append(module)
        for imported in sorted(graph[module]):
            if state.get(imported) == 1:
                circles.append(" -> ".join([*path[path.index(imported) :], imported]))
            elif imported not in state:
                visit(imported)
        path.pop()
        state[module] = 2

    for module in sorted(graph):
        if module not in state:
            visit(module)
    assert circles == []


def test_no_module_is_long() -> None:
    long = {
        name: lines
        for name, path in _modules().items()
        if (lines := len(path.read_text().splitlines())) > MOST_LINES
    }
    assert long == {}


def test_engine_and_cli_ask_types_not_objects() -> None:
    """What a place can do is declared in places/base.py, never probed with getattr or
    hasattr (cli/main.py looks up a verb's command in its module, not a place)."""
    probing = []
    for name, path in _modules().items():
        if not name.startswith(("archiver.engine", "archiver.cli")) or name == "archiver.cli.main":
            continue
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Call) and getattr(node.func, "id", None) in (
                "getattr",
                "hasattr",
            ):
                probing.append(f"{name}:{node.lineno}")
    assert probing == []


def test_the_checks_see_a_violation(tmp_path: Path) -> None:
    """The import reader finds imports inside functions too (a lazy import is an import)."""
    module = tmp_path / "m.py"
    module.write_text("def f():\n    from archiver.engine.copy import copy\n")
    assert _imports(module, _modules()) == {"archiver.engine.copy"}
