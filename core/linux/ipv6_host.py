"""A dual-stack network's IPv6 side as a host serves it.

The network host of a dual-stack network puts the /64's gateway on the bridge, routes
IPv6 and runs router adverts and DHCPv6 from the network's dnsmasq (dnsmasq6.py). A
multi-host network is served IPv4-only for now: its hosts each route from an IPv4
address of their own, and the /64 has one gateway address, which two hosts cannot share.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from core import ipv6


@dataclass(frozen=True)
class NetworkV6:
    cidr: str  # its /64
    gateway: str
    mode: str  # one of core.ipv6.MODES


def network_v6(network: Any, gateway_here: str | None) -> NetworkV6 | None:
    """The IPv6 this host serves for ``network`` (a row of networks): where it routes the
    network's IPv4 guests, and the network is not multi-host."""
    if network.cidr_v6 is None or gateway_here is None or network.multi_host:
        return None
    return NetworkV6(
        cidr=str(network.cidr_v6),
        gateway=str(network.gateway_v6),
        mode=str(network.ipv6_mode or ipv6.DEFAULT_MODE),
    )


def link_local(mac: str) -> str:
    """The link-local address a port with ``mac`` forms (modified EUI-64), written as
    ipaddress writes it: the filter names one per port, so a host of thousands of ports
    asks for thousands at once."""
    o = bytes.fromhex(mac.replace(":", ""))
    if len(o) != 6:
        raise ValueError(f"not a MAC address: {mac!r}")
    first = (o[0] ^ 0x02) << 8 | o[1]
    # fe80:0:0:0 (and the first interface group when it is zero too) is the longest run
    # of zero groups, the one written as "::": the fourth group has 0xfe in it.
    rest = f"{o[2] << 8 | 0xFF:x}:{0xFE00 | o[3]:x}:{o[4] << 8 | o[5]:x}"
    return f"fe80::{first:x}:{rest}" if first else f"fe80::{rest}"
