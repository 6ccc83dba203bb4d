"""What one security-group rule lets in: its ranges, its words, overlap and matching.

The service checks new rules and answers `secgroup explain` with these, and the host
layer turns the same ranges into nftables elements, so what people are told and what
the kernel does come from one definition.

Rules are stored the way nova-network stored them: ``from_port``/``to_port`` are a port
range for tcp and udp, the ICMP type and code for icmp (-1 meaning any), and -1/-1 for
``any`` (every protocol, every port).

A rule judges one family, as Neutron's ethertype says: IPv4 or IPv6. Its CIDR is of that
family; a source-group rule matches the members' addresses of that family (their fixed
IPv4 address, or their IPv6 one). ``icmp`` on an IPv6 rule is ICMPv6 (types and codes
as RFC 4443 numbers them: 128 is echo request); the command line takes ``icmpv6`` as a
name for it.
"""

from __future__ import annotations

import ipaddress
from typing import NamedTuple, Protocol

ANY = -1
PROTOCOLS = ("tcp", "udp", "icmp", "any")
IPV4, IPV6 = "IPv4", "IPv6"
ETHERTYPES = (IPV4, IPV6)
# IP protocol numbers, as nftables stores them.
NUMBERS = {"tcp": 6, "udp": 17, "icmp": 1}


class Ranges(NamedTuple):
    """The inclusive ranges a rule covers: ports (tcp/udp) or ICMP types, then ICMP codes."""

    first: tuple[int, int]
    second: tuple[int, int]


def ranges(protocol: str, from_port: int, to_port: int) -> Ranges:
    if protocol in ("tcp", "udp"):
        return Ranges((from_port, to_port), (0, 0))
    if protocol == "icmp":
        types = (0, 255) if from_port == ANY else (from_port, from_port)
        codes = (0, 255) if to_port == ANY else (to_port, to_port)
        return Ranges(types, codes)
    return Ranges((0, 65535), (0, 255))


def icmp_name(ethertype: str) -> str:
    return "icmpv6" if ethertype == IPV6 else "icmp"


def what(protocol: str, from_port: int, to_port: int, ethertype: str = IPV4) -> str:
    """The traffic a rule admits, in words: ``tcp 22``, ``udp 1000-2000``, ``icmp type 8``,
    ``icmpv6 type 128``, ``any IPv6 protocol``."""
    if protocol == "any":
        return "any IPv6 protocol" if ethertype == IPV6 else "any protocol"
    if protocol == "icmp":
        name = icmp_name(ethertype)
        if from_port == ANY:
            return f"{name} (any type)"
        code = "" if to_port == ANY else f" code {to_port}"
        return f"{name} type {from_port}{code}"
    ports = str(from_port) if from_port == to_port else f"{from_port}-{to_port}"
    return f"{protocol} {ports}"


def source_text(cidr: str | None, source_group: str | None, ethertype: str = IPV4) -> str:
    if cidr is not None:
        return cidr
    return f"members of {source_group}" + (" over IPv6" if ethertype == IPV6 else "")


def family_of(cidr: str) -> str:
    """The family of a stored CIDR (or address)."""
    return IPV6 if ":" in cidr else IPV4


class StoredRule(Protocol):
    @property
    def id(self) -> int: ...
    @property
    def protocol(self) -> str: ...
    @property
    def from_port(self) -> int: ...
    @property
    def to_port(self) -> int: ...
    @property
    def cidr(self) -> str | None: ...
    @property
    def source_group(self) -> str | None: ...
    @property
    def ethertype(self) -> str: ...


def rule_text(rule: StoredRule) -> str:
    """A rule in one line, as the command line and the console name it."""
    admitted = what(rule.protocol, rule.from_port, rule.to_port, rule.ethertype)
    source = source_text(rule.cidr, rule.source_group, rule.ethertype)
    return f"#{rule.id} {admitted} from {source}"


def rule_key(rule: int) -> str:
    """How a rule is named among what another host owes: its record names the rule's
    group, the change's audit event the rule itself."""
    return f"rule #{rule}"


def rule_subject(group: str, words: str) -> str:
    """How a host's plan names one rule of a group ("alpha/web: tcp 80 from 0.0.0.0/0"),
    so that the rule's row can be marked while the host owes it."""
    return f"{group}: {words}"


def rule_words(
    protocol: str,
    from_port: int,
    to_port: int,
    cidr: str | None,
    source: str | None,
    ethertype: str = IPV4,
) -> str:
    """A rule as the host's filter describes it: what it admits, and from where (a
    source group by its "project/name" label)."""
    admitted = what(protocol, from_port, to_port, ethertype)
    return f"{admitted} from {source_text(cidr, source, ethertype)}"


def ports_text(protocol: str, from_port: int, to_port: int) -> str:
    """The ports (or ICMP type and code) part of a rule: ``22``, ``1000-2000``, ``any``."""
    words = what(protocol, from_port, to_port)
    return "any" if protocol == "any" else words.split(" ", 1)[1]


def protocol_text(protocol: str, ethertype: str = IPV4) -> str:
    """The protocol column of a rule: icmp on IPv6 is shown as icmpv6."""
    return icmp_name(ethertype) if protocol == "icmp" else protocol


def _meet(a: tuple[int, int], b: tuple[int, int]) -> bool:
    return a[0] <= b[1] and b[0] <= a[1]


def overlap(
    a: tuple[str, int, int, str | None, int | None, str],
    b: tuple[str, int, int, str | None, int | None, str],
) -> bool:
    """Whether some packet is let in by both rules (protocol, from, to, cidr, source
    group, ethertype). Rules of two families never overlap.

    A CIDR and a source group are never said to overlap: the group's members change.
    """
    if a[5] != b[5]:
        return False
    protocol_a, protocol_b = a[0], b[0]
    if protocol_a != protocol_b and "any" not in (protocol_a, protocol_b):
        return False
    if protocol_a == protocol_b:
        ra, rb = ranges(*a[:3]), ranges(*b[:3])
        if not (_meet(ra.first, rb.first) and _meet(ra.second, rb.second)):
            return False
    if a[3] is not None and b[3] is not None:
        return ipaddress.ip_network(a[3]).overlaps(ipaddress.ip_network(b[3]))
    return a[4] is not None and a[4] == b[4]


def admits(
    protocol: str, from_port: int, to_port: int, packet: Packet, ethertype: str = IPV4
) -> bool:
    """Whether a rule of ``ethertype`` takes ``packet`` by its family, protocol and ranges
    (its source is checked apart)."""
    if ethertype != packet.ethertype:
        return False
    if protocol == "any":
        return True
    if protocol != packet.protocol:
        return False
    covered = ranges(protocol, from_port, to_port)
    if protocol == "icmp":
        return (
            covered.first[0] <= packet.port <= covered.first[1]
            and covered.second[0] <= packet.code <= covered.second[1]
        )
    return covered.first[0] <= packet.port <= covered.first[1]


class Packet(NamedTuple):
    """The first packet of a connection, as `explain` is asked about it."""

    source: str
    protocol: str  # tcp, udp or icmp (ICMPv6 from an IPv6 source)
    port: int  # destination port, or the ICMP type
    code: int = 0  # the ICMP code

    @property
    def ethertype(self) -> str:
        return family_of(self.source)

    def text(self) -> str:
        if self.protocol == "icmp":
            name = icmp_name(self.ethertype)
            return f"{name} type {self.port} code {self.code} from {self.source}"
        return f"{self.protocol} {self.port} from {self.source}"
