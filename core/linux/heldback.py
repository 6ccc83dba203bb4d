"""The networks a plan holds back, kept out of the filter's plan and the closed ports'.

A network held back by a problem of its own (planner.py) gets none of its operations and
loses nothing it already has. The security-group filter and the open-port sets are
planned for the whole host at once, so the same rule is applied to them here: they are
planned without the held networks (their instance ports, their gateways as DHCP servers,
the segment links, uplinks and VPN taps netcon would put on their bridges), and no
operation of that plan may touch any of those, added or taken away. This matters beyond
tidiness: a gateway address in use elsewhere holds its network back, and letting DHCP
answers from that address reach instances would let another server's through.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

from core.linux.closedports import (
    ClosePort,
    HairpinUplink,
    LeasePort,
    OpenPort,
    UnhairpinUplink,
    routed_uplinks,
)
from core.linux.desired import DesiredHost
from core.linux.operations import Operation
from core.linux.ownports import own_ports, owned_bridges
from core.linux.secgroups import tables as sg
from core.linux.secgroups.operations import (
    AddDhcpServer,
    AddPortFilter,
    ChangePortFilter,
    DeleteFilterTable,
    RemoveDhcpServer,
    RemovePortFilter,
)


@dataclass(frozen=True)
class HeldBack:
    """What the held networks alone would put in the filter and the open sets."""

    ports: frozenset[str]
    gateways: frozenset[str]
    own: frozenset[str]
    uplinks: frozenset[str]
    # Their bridges of netcon's own: the bridge table closes them too.
    bridges: frozenset[str]

    def touches(self, op: Operation) -> bool:
        if isinstance(op, DeleteFilterTable) and (op.family, op.name) == sg.BRIDGE:
            # Planned away for want of any other bridge or port here: it still filters
            # and closes the held networks'.
            return bool(self.ports or self.bridges)
        if isinstance(op, AddPortFilter | ChangePortFilter | RemovePortFilter):
            return op.port in self.ports
        if isinstance(op, AddDhcpServer | RemoveDhcpServer):
            return op.address in self.gateways
        if isinstance(op, OpenPort | ClosePort | LeasePort):
            return op.port in self.own
        if isinstance(op, HairpinUplink | UnhairpinUplink):
            return op.port in self.uplinks
        return False


def split(desired: DesiredHost, held: frozenset[str]) -> tuple[DesiredHost, HeldBack | None]:
    """``desired`` without the networks whose bridges are ``held``, and what those
    networks alone account for (None when nothing is held)."""
    if not held:
        return desired, None
    kept = replace(desired, networks=tuple(n for n in desired.networks if n.bridge not in held))
    alone = replace(desired, networks=tuple(n for n in desired.networks if n.bridge in held))
    kept_ports = {port for net in kept.networks for port in net.ports}
    kept_gateways = {net.gateway for net in kept.networks if net.gateway is not None}
    found = HeldBack(
        ports=frozenset(port for net in alone.networks for port in net.ports) - kept_ports,
        gateways=frozenset(n.gateway for n in alone.networks if n.gateway is not None)
        - kept_gateways,
        own=own_ports(alone) - own_ports(kept),
        uplinks=routed_uplinks(alone) - routed_uplinks(kept),
        bridges=owned_bridges(alone) - owned_bridges(kept),
    )
    security = desired.security
    if security is not None:
        security = replace(
            security,
            ports=tuple(p for p in security.ports if p.name not in found.ports),
            dhcp_servers=tuple(a for a in security.dhcp_servers if a not in found.gateways),
        )
    return replace(kept, security=security), found
