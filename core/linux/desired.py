"""What this host must have: the desired state the host layer is handed (read from the
database by core.desired, in one transaction).

A network hosted here gets everything: bridge, segment link, gateway address, dnsmasq
and NAT. A network that only has instances placed on this host (a compute host) gets
the bridge and its segment, so its instances reach the network host over the segment.

A multi-host network (nova-network's multi_host) is served by every host with its
instances, each from the address reserved for it in the network (fixed_ips.host): that
address on the bridge, a dnsmasq handing it out as router and DNS to this host's own
instances only (the others' are ignored, not refused: their hosts answer them over the
same segment), SNAT and the floating IPs of its instances. Its network host without
instances of its own keeps the network's gateway, behind which the VPN's clients are.
"""

from __future__ import annotations

import bisect
import ipaddress
from dataclasses import dataclass, field, replace
from functools import cached_property
from typing import TypeVar

from core.linux.ipv6_host import NetworkV6
from core.linux.scope import Reach
from core.linux.secgroups.spec import DesiredFilter


@dataclass(frozen=True)
class DhcpHost:
    mac: str
    hostname: str
    address: str
    # The host its instance runs on (read for multi-host networks only).
    host: str | None = field(default=None, compare=False)
    # The database says the guest holds a lease (a starting dnsmasq is told of it).
    leased: bool = False
    # Its IPv6 address on a dual-stack network (None: IPv4 only).
    address_v6: str | None = None


@dataclass(frozen=True)
class HeldLease:
    """A lease dnsmasq still holds for an address whose instance is gone."""

    address: str
    mac: str


@dataclass(frozen=True)
class Segment:
    kind: str  # "vlan" (802.1Q) or "vxlan"
    id: int
    parent: str  # the VLAN interface: 802.1Q parent or VXLAN underlay

    @property
    def ifname(self) -> str:
        return f"vlan{self.id}" if self.kind == "vlan" else f"vx{self.id}"


@dataclass(frozen=True)
class Dhcp:
    netmask: str
    dhcp_start: str
    dns: tuple[str, ...]
    domain: str
    lease_time: int
    hosts: tuple[DhcpHost, ...]
    # Released addresses come back only once their lease is gone; these are asked back
    # from dnsmasq (dhcp_release) instead of waiting for the lease to run out.
    held_leases: tuple[HeldLease, ...] = ()
    # Handed to guests as option 26 (None: not sent).
    mtu: int | None = None
    # Where the names dnsmasq does not know are forwarded.
    upstream: tuple[str, ...] = ()
    # The names it answers, when not only those of ``hosts``: on a multi-host network it
    # hands leases to this host's instances only but names every instance.
    names: tuple[DhcpHost, ...] | None = None
    # Set on a multi-host network: the host whose instances alone it serves (it ignores
    # every other client, whose own host answers it, and learns only their leases).
    serving_host: str | None = None

    @cached_property
    def hosts_file(self) -> str:
        """The dnsmasq hosts file, exactly: one ``MAC,hostname.domain,IP`` line each."""
        suffix = f".{self.domain},"
        return "".join([f"{h.mac},{h.hostname}{suffix}{h.address}\n" for h in self.hosts])

    @cached_property
    def names_file(self) -> str:
        """The names dnsmasq answers for, leased or not: ``IP name.domain name`` each (the
        first name is what the address's reverse lookup gives)."""
        named = self.hosts if self.names is None else self.names
        return "".join([f"{h.address} {h.hostname}.{self.domain} {h.hostname}\n" for h in named])


@dataclass(frozen=True)
class NetworkKeys:
    """The fixed addresses a change named (an instance launched or terminated), and
    their ports. A network read at them carries the DHCP hosts, held leases and ports
    of these addresses alone: the rest of its hosts file is as the host has it."""

    addresses: frozenset[str]
    ports: frozenset[str]


@dataclass(frozen=True)
class DesiredNetwork:
    id: int
    cidr: str
    manager: str
    label: str
    project: str | None
    bridge: str
    # False for Flat: the admin's bridge is used as it is, never created or deleted.
    owns_bridge: bool
    bridge_interface: str | None
    segment: Segment | None
    # The address this host routes the network's guests from (its own on a multi-host
    # network); None on a compute host (and for Flat): no address, no dnsmasq there.
    gateway: str | None
    prefixlen: int
    broadcast: str
    dhcp: Dhcp | None
    # VLAN networks belong to one project each and must not reach one another.
    isolated: bool
    # The MTU of its bridge, segment link and instance ports (None: left as they are).
    mtu: int | None = None
    # The ports (tap + MAC) of this host's instances on this network.
    ports: tuple[str, ...] = ()
    # The host that serves it (gateway, DHCP): this one, another, or None (none yet).
    network_host: str | None = None
    # Its manager's: a dnsmasq serves it (on its network host, or each multi host),
    # and its project's VPN server sits in its bridge.
    serves_dhcp: bool = False
    runs_vpn: bool = False
    # Its IPv6 gateway, router adverts and DHCPv6 here (None: not served here).
    ipv6: NetworkV6 | None = None
    # It has an IPv6 /64, whoever serves it: its bridge carries router adverts.
    dual_stack: bool = False
    # Served by every host with its instances (nova-network's multi_host).
    multi_host: bool = False
    # Set when read at a change's keys alone (see NetworkKeys); None: read whole.
    keys: NetworkKeys | None = None


@dataclass(frozen=True)
class FloatingNat:
    floating: str
    fixed: str
    interface: str


@dataclass(frozen=True)
class DesiredHost:
    host: str
    public_interface: str
    vxlan_group: str
    vxlan_port: int
    networks: tuple[DesiredNetwork, ...] = ()
    floating: tuple[FloatingNat, ...] = ()
    # Networks whose outbound traffic is masqueraded out of the public interface.
    snat_ranges: tuple[str, ...] = field(default=())
    # Security groups on this host's instance ports; None: leave the filter alone.
    security: DesiredFilter | None = None
    # Set when this is the desired state of a scope only: what that scope covers.
    reach: Reach | None = None

    @property
    def public_interfaces(self) -> tuple[str, ...]:
        names = {f.interface for f in self.floating}
        if self.snat_ranges:
            names.add(self.public_interface)
        return tuple(sorted(names))

    @property
    def isolated_bridges(self) -> tuple[str, ...]:
        return tuple(sorted(n.bridge for n in self.networks if n.isolated))


def patched(whole: DesiredHost, scoped: DesiredHost) -> DesiredHost:
    """``whole`` brought up to date with a scope's desired state: what the scope reaches
    is as ``scoped`` says, everything else as before. Cheaper than reading it all again."""
    reach = scoped.reach
    if reach is None:
        return scoped
    before = {n.id: n for n in whole.networks}
    networks_ = tuple(
        sorted(
            [n for n in whole.networks if n.bridge not in reach.bridges]
            + [_patched_network(before.get(n.id), n) for n in scoped.networks],
            key=lambda n: n.id,
        )
    )
    return replace(
        whole,
        networks=networks_,
        floating=tuple(
            sorted(
                [f for f in whole.floating if f.floating not in reach.floating]
                + list(scoped.floating),
                key=lambda f: ipaddress.IPv4Address(f.floating),
            )
        ),
        snat_ranges=tuple(n.cidr for n in networks_ if n.gateway is not None),
        # A filter read at a change's keys alone is no whole filter.
        security=(
            scoped.security
            if scoped.security is not None and not scoped.security.keyed
            else whole.security
        ),
    )


def _patched_network(whole: DesiredNetwork | None, keyed: DesiredNetwork) -> DesiredNetwork:
    """A network read at some keys, completed from its whole state before."""
    keys = keyed.keys
    if keys is None:
        return keyed
    if whole is None or whole.keys is not None:
        # Nothing whole to complete it from: its other hosts stay unknown here.
        return keyed
    ports = tuple(p for p in whole.ports if p not in keys.ports) + keyed.ports
    dhcp = keyed.dhcp
    if dhcp is not None and whole.dhcp is not None:
        dhcp = replace(
            dhcp,
            hosts=_by_address(
                [h for h in whole.dhcp.hosts if h.address not in keys.addresses], dhcp.hosts
            ),
            held_leases=_by_address(
                [h for h in whole.dhcp.held_leases if h.address not in keys.addresses],
                dhcp.held_leases,
            ),
        )
    return replace(keyed, ports=ports, dhcp=dhcp, keys=None)


_Addressed = TypeVar("_Addressed", DhcpHost, HeldLease)


def _by_address(kept: list[_Addressed], added: tuple[_Addressed, ...]) -> tuple[_Addressed, ...]:
    """``added`` put among ``kept`` (in address order) where their addresses sort."""
    for item in added:
        bisect.insort(kept, item, key=lambda h: int(ipaddress.IPv4Address(h.address)))
    return tuple(kept)


def fenced(desired: DesiredHost) -> DesiredHost:
    """``desired`` as a host that may no longer serve: its bridges and segments stay (its
    instances keep their links), but no gateway address, DHCP server or NAT."""
    return replace(
        desired,
        networks=tuple(
            replace(network, gateway=None, dhcp=None, isolated=False, ipv6=None)
            for network in desired.networks
        ),
        floating=(),
        snat_ranges=(),
    )
