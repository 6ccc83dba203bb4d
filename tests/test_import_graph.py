"""The host layer's imports, read from its source: it never reaches the database, the
service or the readers of the desired state, and neither its modules nor those readers
import a circle. Nor does the console's, counting its imports for types alone."""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
LINUX = ROOT / "core" / "linux"
# The readers the host layer is handed its desired state by: they import the host
# layer's types, never the other way round.
DESIRED = ROOT / "core" / "desired"
SERVICE = ROOT / "core" / "service"
CONSOLE = ROOT / "tui"
# What the host layer must never import, however late (inside a function or not).
FORBIDDEN = ("core.store", "core.service", "core.desired", "core.cli", "core.agent", "tui")


def _module(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def _modules(*roots: Path) -> dict[str, Path]:
    return {
        _module(path): path for root in roots or (LINUX,) for path in sorted(root.rglob("*.py"))
    }


def _type_checking_only(node: ast.If) -> bool:
    test = node.test
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"
    )


def _imports(path: Path, known: set[str]) -> tuple[set[str], set[str]]:
    """Every module ``path`` imports (by its dotted name; ``from package import name``
    counts as the module ``package.name`` when there is one), and of those the ones
    imported when it runs (not under ``if TYPE_CHECKING``)."""
    tree = ast.parse(path.read_text(), str(path))
    package = _module(path) if path.name == "__init__.py" else _module(path).rpartition(".")[0]
    every: set[str] = set()
    running: set[str] = set()

    def visit(node: ast.AST, typing_only: bool) -> None:
        if isinstance(node, ast.If) and _type_checking_only(node):
            for child in node.body:
                visit(child, True)
            for child in node.orelse:
                visit(child, typing_only)
            return
        found: set[str] = set()
        if isinstance(node, ast.Import):
            found = {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")
                anchor = anchor[: len(anchor) - (node.level - 1)]
                base = ".".join([*anchor, base] if base else anchor)
            for alias in node.names:
                name = f"{base}.{alias.name}"
                found.add(name if name in known else base)
        every.update(found)
        if not typing_only:
            running.update(found)
        for child in ast.iter_child_nodes(node):
            visit(child, typing_only)

    visit(tree, False)
    return every, running


def test_the_host_layer_imports_no_database_service_or_reader() -> None:
    modules = _modules()
    found = []
    for name, path in modules.items():
        every, _ = _imports(path, set(modules))
        found += [
            f"{name} imports {imported}"
            for imported in sorted(every)
            if imported.startswith(FORBIDDEN) or imported.split(".")[0] == "sqlalchemy"
        ]
    assert found == []


def _graph(
    modules: dict[str, Path], typing_too: bool, *, to_own_package: bool = False
) -> dict[str, set[str]]:
    """Who imports whom among ``modules``; with ``typing_too`` the imports made for types
    alone (under ``if TYPE_CHECKING``) count as well. A package's __init__ is imported
    with each of its modules: an edge from a module to its own package is no circle of
    the code's making, unless ``to_own_package`` (the package's face must not be
    imported by its own parts)."""
    graph = {
        name: {
            m for m in _imports(path, set(modules))[0 if typing_too else 1]
            if m in modules and m != name
        }
        for name, path in modules.items()
    }
    if not to_own_package:
        for name in graph:
            graph[name] = {m for m in graph[name] if not name.startswith(m + ".")}
    return graph


def _walk(graph: dict[str, set[str]]) -> list[list[str]]:
    """Every loop of imports found by a depth-first walk of ``graph``."""
    circles: list[list[str]] = []
    state: dict[str, int] = {}  # 1: on the current path, 2: done
    path: list[str] = []

    def walk(node: str) -> None:
        state[node] = 1
        path.append(node)
        for nxt in sorted(graph[node]):
            if state.get(nxt) == 1:
                circles.append([*path[path.index(nxt) :], nxt])
            elif nxt not in state:
                walk(nxt)
        path.pop()
        state[node] = 2

    for node in sorted(graph):
        if node not in state:
            walk(node)
    return circles


def _circles(modules: dict[str, Path], typing_too: bool) -> list[list[str]]:
    """The circles among ``modules``' imports (see _graph)."""
    return _walk(_graph(modules, typing_too))


def test_the_service_and_its_parts_import_no_circle() -> None:
    """The facade (core.service.facade, handed on by core.service) imports the parts
    and the transaction context; no part imports the facade, its package's face or a
    part that imports it back, however late."""
    graph = _graph(_modules(SERVICE), typing_too=True, to_own_package=True)
    assert graph["core.service.facade"] >= {"core.service.networks", "core.service.vpn"}
    assert _walk(graph) == []


def test_the_host_layer_and_its_readers_import_no_circle() -> None:
    assert _circles(_modules(LINUX, DESIRED), typing_too=False) == []


def test_the_host_layer_imports_no_circle_even_for_its_types() -> None:
    """Operations know the Execution they are handed; it knows none of them."""
    graph = _graph(_modules(LINUX), typing_too=True)
    assert "core.linux.execution" in graph["core.linux.operations"]
    assert _walk(graph) == []


def test_the_console_imports_no_circle_not_even_for_types() -> None:
    """The main screen's parts are typed against the frame the screen is built on
    (tui.screens.frame), never against the screen that imports them."""
    assert _circles(_modules(CONSOLE), typing_too=True) == []


def test_the_walk_finds_a_circle_made_for_types_alone(tmp_path: Path) -> None:
    """The walk itself: two modules that import each other, one of them only under
    ``if TYPE_CHECKING``, are a circle when types count and none when they do not."""
    package = tmp_path / "pkg"
    package.mkdir()
    (package / "__init__.py").write_text("")
    (package / "screen.py").write_text("from pkg.part import Part\n")
    (package / "part.py").write_text(
        "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    from pkg.screen import S\n"
    )
    global ROOT
    saved, ROOT = ROOT, tmp_path
    try:
        modules = _modules(package)
        assert _circles(modules, typing_too=True) == [["pkg.part", "pkg.screen", "pkg.part"]]
        assert _circles(modules, typing_too=False) == []
    finally:
        ROOT = saved


def test_the_walk_sees_imports_inside_functions() -> None:
    """The walk itself: a late import inside a function is found like a top-level one."""
    modules = _modules()
    every, running = _imports(LINUX / "host.py", set(modules))
    assert "core.linux.executor" in every  # imported inside HostLayer._executor
    assert "core.linux.nftelements" in every
    assert "core.linux.netlink" in running
