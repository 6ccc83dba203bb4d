"""The three managers by name: what a stored network's ``manager`` column names."""

from __future__ import annotations

from core.errors import InvalidInput
from core.managers.base import NetworkManager
from core.managers.flat import FlatManager
from core.managers.flatdhcp import FlatDHCPManager
from core.managers.vlan import VlanManager

MANAGERS: dict[str, NetworkManager] = {
    m.kind: m for m in (FlatManager(), FlatDHCPManager(), VlanManager())
}


def manager(kind: object, field: str = "manager") -> NetworkManager:
    if not isinstance(kind, str) or kind not in MANAGERS:
        raise InvalidInput(field, f"{kind!r} must be one of {', '.join(MANAGERS)}")
    return MANAGERS[kind]
