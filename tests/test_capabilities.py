"""Managers are asked what they do, not compared by name."""

from __future__ import annotations

import ast
import re
import subprocess
import sys
from pathlib import Path

import pytest

from core.managers.capabilities import BY_KIND, capabilities, kinds
from core.managers.registry import MANAGERS


def test_each_manager_carries_its_capabilities() -> None:
    assert set(MANAGERS) == set(BY_KIND)
    for kind, manager in MANAGERS.items():
        assert manager.capabilities == capabilities(kind)
    assert MANAGERS["flat"].injects_config and not MANAGERS["vlan"].injects_config
    assert MANAGERS["vlan"].runs_vpn and not MANAGERS["flatdhcp"].runs_vpn


def test_the_managers_with_a_capability_are_found_for_a_query() -> None:
    assert kinds(runs_vpn=True) == ("vlan",)
    assert kinds(serves_dhcp=True) == ("flatdhcp", "vlan")
    assert kinds(owns_bridge=False) == ("flat",)
    assert kinds(serves_dhcp=True, isolates=False) == ("flatdhcp",)
    with pytest.raises(TypeError):
        kinds(sings=True)


def test_capabilities_are_asked_without_sqlalchemy() -> None:
    # The console's first rows ask them before SQLAlchemy, which the managers' rules
    # need, is loaded.
    script = (
        "import sys\n"
        "from core.managers.capabilities import capabilities\n"
        "assert capabilities('vlan').runs_vpn\n"
        "print(sorted(m for m in sys.modules if m.partition('.')[0] == 'sqlalchemy'))\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=60, check=True
    )
    assert result.stdout.strip() == "[]"


ROOT = Path(__file__).resolve().parents[1]
# The database's own rules (check constraints, migrations) name the kinds it stores.
SCHEMA = (ROOT / "core" / "store" / "schema.py", ROOT / "core" / "store" / "migrations")
# A kind named beside "manager" in SQL: `manager = 'vlan'`, `manager IN ('flat', ...`.
SQL_COMPARISON = re.compile(r"manager\s*(?:!=|<>|=|\bIN\b\s*\()\s*'", re.IGNORECASE)


def _about_a_manager(node: ast.AST) -> bool:
    """A name, attribute, key or call that reads a manager's name."""
    return any(
        (isinstance(part, ast.Name) and "manager" in part.id.lower())
        or (isinstance(part, ast.Attribute) and "manager" in part.attr.lower())
        or (isinstance(part, ast.Constant) and part.value == "manager")
        for part in ast.walk(node)
    )


def _names_a_kind(node: ast.AST) -> bool:
    return any(
        isinstance(part, ast.Constant) and part.value in BY_KIND for part in ast.walk(node)
    )


def _comparisons_by_name(path: Path) -> list[str]:
    found = []
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Compare):
            sides = [node.left, *node.comparators]
            if any(map(_about_a_manager, sides)) and any(map(_names_a_kind, sides)):
                found.append(f"{path.relative_to(ROOT)}:{node.lineno}: {ast.unparse(node)}")
        elif (
            isinstance(node, ast.Constant)
            and isinstance(node.value, str)
            and SQL_COMPARISON.search(node.value)
        ):
            found.append(f"{path.relative_to(ROOT)}:{node.lineno}: {node.value!r}")
    return found


def test_no_code_outside_the_managers_compares_a_managers_name() -> None:
    sources = [
        path
        for package in ("core", "tui")
        for path in sorted((ROOT / package).rglob("*.py"))
        if (ROOT / "core" / "managers") not in path.parents
        and not any(path == kept or kept in path.parents for kept in SCHEMA)
    ]
    assert sources
    found = [line for path in sources for line in _comparisons_by_name(path)]
    assert found == []
