"""A dual-stack network's IPv6 side as a host serves it.

The network host of a dual-stack network puts the /64's gateway on the bridge, routes
IPv6 and runs router adverts and DHCPv6 from the network's dnsmasq (dnsmasq6.py). On a
multi-host network every host with instances there routes them from an IPv4 address of
its own, and from the IPv6 address at the same offset in the /64 (10.0.16.6 in
10.0.16.0/24 is ``PREFIX::6``): each host's adverts, DNS server and DHCPv6 are its own,
and segment6.py keeps them off the segment, so another host's guests never hear them.
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
    network's IPv4 guests, from ``gateway_here``."""
    if network.cidr_v6 is None or gateway_here is None:
        return None
    gateway = str(network.gateway_v6)
    if network.multi_host:
        gateway = str(gateway_v6_of(str(network.cidr_v6), str(network.cidr), gateway_here))
    return NetworkV6(
        cidr=str(network.cidr_v6),
        gateway=gateway,
        mode=str(network.ipv6_mode or ipv6.DEFAULT_MODE),
    )


def gateway_v6_of(cidr_v6: str, cidr: str, gateway: str) -> ipaddress.IPv6Address:
    """The IPv6 address a host routes from where it routes IPv4 from ``gateway``: the
    same offset in the /64 (the network's own gateway, offset 1, is the /64's ``::1``)."""
    offset = int(ipaddress.IPv4Address(gateway)) - int(ipaddress.IPv4Network(cidr).network_address)
    return ipaddress.IPv6Network(cidr_v6).network_address + offset


LINK_LOCAL = ipaddress.IPv6Network("fe80::/64")


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
