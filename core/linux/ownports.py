"""The ports netcon itself puts on its bridges (segment links, uplinks, VPN taps), as
the desired state names them: what the closed-ports filter lets pass as netcon's own,
and what a scoped observation looks up (see closedports.py)."""

from __future__ import annotations

import re

from core.linux.desired import DesiredHost
from core.linux.vpn.spec import tap_name

# A segment link's name (desired.Segment.ifname): 802.1Q or VXLAN, and its id.
_SEGMENT = re.compile(r"(?:vlan|vx)(\d+)")


def owned_bridges(desired: DesiredHost) -> frozenset[str]:
    return frozenset(n.bridge for n in desired.networks if n.owns_bridge)


def own_ports(desired: DesiredHost) -> frozenset[str]:
    """The ports netcon itself puts on its bridges: segment links, bridge_interfaces,
    and the VPN tap of each VLAN network served here."""
    found: set[str] = set(vpn_taps(desired))
    for net in desired.networks:
        if not net.owns_bridge:
            continue
        if net.segment is not None:
            found.add(net.segment.ifname)
        if net.bridge_interface is not None:
            found.add(net.bridge_interface)
    return frozenset(found)


def vpn_taps(desired: DesiredHost) -> frozenset[str]:
    """The tap of each VLAN network served here, where its project's VPN server sits."""
    return frozenset(
        tap_name(net.segment.id)
        for net in desired.networks
        if net.owns_bridge
        and net.segment is not None
        and net.runs_vpn
        and net.gateway is not None
    )


def scoped_own(links: frozenset[str]) -> frozenset[str]:
    """The own ports of the networks a scope names (wanted here or not): their segment
    links and VPN taps, known by the segment id in the link's name."""
    found: set[str] = set()
    for name in links:
        match = _SEGMENT.fullmatch(name)
        if match is not None:
            found.update((name, tap_name(int(match.group(1)))))
    return frozenset(found)
