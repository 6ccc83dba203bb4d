"""What each manager's networks do on a host, said once: the rest of netcon asks a
manager's capabilities, never its name. Free of SQLAlchemy, so that the readers and
the host layer's callers can ask it cheaply."""

from __future__ import annotations

from dataclasses import dataclass, fields


@dataclass(frozen=True)
class Capabilities:
    # netcon makes the network's bridge (and deletes it); else it is the admin's.
    owns_bridge: bool
    # A dnsmasq hands out the network's addresses, and the metadata server answers it.
    serves_dhcp: bool
    # Each network belongs to one project, whose VPN server bridges its clients in.
    runs_vpn: bool
    # Each network is its own segment (802.1Q or VXLAN), kept apart from the others.
    isolates: bool
    # Instances get their address written into them (no DHCP to hand it out).
    injects_config: bool


FLAT = Capabilities(
    owns_bridge=False, serves_dhcp=False, runs_vpn=False, isolates=False, injects_config=True
)
FLATDHCP = Capabilities(
    owns_bridge=True, serves_dhcp=True, runs_vpn=False, isolates=False, injects_config=False
)
VLAN = Capabilities(
    owns_bridge=True, serves_dhcp=True, runs_vpn=True, isolates=True, injects_config=False
)
BY_KIND: dict[str, Capabilities] = {"flat": FLAT, "flatdhcp": FLATDHCP, "vlan": VLAN}
NAMES = frozenset(field.name for field in fields(Capabilities))


def capabilities(kind: str) -> Capabilities:
    """The capabilities of the manager named ``kind`` (a stored network's manager)."""
    return BY_KIND[kind]


def kinds(**wanted: bool) -> tuple[str, ...]:
    """The managers that have (True) or lack (False) each capability named, for a
    query over stored networks: ``networks.c.manager.in_(kinds(runs_vpn=True))``."""
    unknown = set(wanted) - NAMES
    if unknown:
        raise TypeError(f"no such capability: {', '.join(sorted(unknown))}")
    return tuple(
        kind
        for kind, able in BY_KIND.items()
        if all(getattr(able, name) == value for name, value in wanted.items())
    )
