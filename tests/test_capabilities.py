"""Managers are asked what they do, not compared by name."""

from __future__ import annotations

import subprocess
import sys

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
