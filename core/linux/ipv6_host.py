"""A dual-stack network's IPv6 side as a host serves it.

The network host of a dual-stack network puts the /64's gateway on the bridge, routes
IPv6 and runs router adverts and DHCPv6 from the network's dnsmasq (dnsmasq6.py). A
multi-host network is served IPv4-only for now: its hosts each route from an IPv4
address of their own, and the /64 has one gateway address, which two hosts cannot share.
"""

from __future__ import annotations

import ipaddress
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


LINK_LOCAL = ipaddress.IPv6Network("fe80::/64")


def link_local(mac: str) -> str:
    """The link-local address a port with ``mac`` forms (modified EUI-64)."""
    return str(ipv6.eui64(LINK_LOCAL, mac))
