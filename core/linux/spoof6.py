"""IPv6 anti-spoofing and router-advert guard on instance ports (table bridge netcon).

A port may send IPv6 only from its own addresses: the link-local one it forms from its
MAC and, on a dual-stack network, the global one the database holds (the set
``port_ip6``), and from ``::`` only the duplicate address detection and multicast
listener reports a starting interface sends. Neighbour and router solicitations,
neighbour adverts and multicast listener messages pass from its own addresses. What
only a router or a DHCPv6 server may send is dropped whatever its source (RFC 6105's RA
guard): router adverts and redirects, which would take over its neighbours' default
route, and DHCPv6 server replies.

Towards a port pass IPv6 for its own addresses and multicast (neighbour discovery,
router adverts, listener queries). Judging IPv6 by security-group rules is the groups
table's, as for IPv4.
"""

from __future__ import annotations

from typing import Any, Protocol

from core.linux.ipv6_host import link_local

Expr = list[dict[str, Any]]
SET = "port_ip6"
SET_SPEC = (("ifname", "ipv6_addr"), False)

_DROP: dict[str, Any] = {"drop": None}
_ACCEPT: dict[str, Any] = {"accept": None}


def _match(left: Any, right: Any, op: str = "==") -> dict[str, Any]:
    return {"match": {"op": op, "left": left, "right": right}}


def _field(protocol: str, name: str) -> dict[str, Any]:
    return {"payload": {"protocol": protocol, "field": name}}


def _meta(key: str) -> dict[str, Any]:
    return {"meta": {"key": key}}


def _own(direction: str, field: str) -> dict[str, Any]:
    return {"concat": [_meta(direction), _field("ip6", field)]}


_IPV6 = _match(_field("ether", "type"), "ip6")
_ICMPV6 = _match(_meta("l4proto"), "ipv6-icmp")


def _icmpv6(*types: str) -> list[dict[str, Any]]:
    # By meta l4proto, which the bridge family finds past extension headers: a router
    # advert behind a hop-by-hop header is still one.
    return [_IPV6, _ICMPV6, _match(_field("icmpv6", "type"), {"set": list(types)})]


# (comment, expression), in order, for the chain that judges what a port sends.
SPOOF_RULES: tuple[tuple[str, Expr], ...] = (
    ("IPv6 router advert or redirect", [*_icmpv6("nd-router-advert", "nd-redirect"), _DROP]),
    (
        "DHCPv6 server reply",
        [_IPV6, _match(_meta("l4proto"), "udp"), _match(_field("udp", "sport"), 547), _DROP],
    ),
    (
        "IPv6 address detection",
        [
            _match(_field("ip6", "saddr"), "::"),
            *_icmpv6("nd-neighbor-solicit", "mld-listener-report", "mld2-listener-report"),
            _ACCEPT,
        ],
    ),
    ("own IPv6", [_IPV6, _match(_own("iifname", "saddr"), f"@{SET}", "!="), _DROP]),
    ("IPv6", [_IPV6, _ACCEPT]),
)

# For the chain that judges what is sent to a port.
GUARD_RULES: tuple[tuple[str, Expr], ...] = (
    ("to its own IPv6", [_IPV6, _match(_own("oifname", "daddr"), f"@{SET}"), _ACCEPT]),
    (
        "IPv6 multicast",
        [_IPV6, _match(_field("ip6", "daddr"), {"prefix": {"addr": "ff00::", "len": 8}}), _ACCEPT],
    ),
)


class PortAddresses(Protocol):
    """What names a port's IPv6 sources (a filtered port has it)."""

    @property
    def name(self) -> str: ...

    @property
    def mac(self) -> str: ...

    @property
    def address_v6(self) -> str | None: ...


def port_elements(port: PortAddresses) -> list[str]:
    """The ``port_ip6`` elements of ``port``: its link-local and global addresses."""
    return port_elements_of(port.name, port.mac, port.address_v6)


def port_elements_of(name: str, mac: str, address_v6: str | None) -> list[str]:
    return [f"{name} . {address}" for address in port_addresses(mac, address_v6)]


def port_addresses(mac: str, address_v6: str | None) -> tuple[str, ...]:
    """The IPv6 sources of a port with ``mac``: its link-local address, and its global
    one on a dual-stack network."""
    local = link_local(mac)
    return (local, address_v6) if address_v6 else (local,)
