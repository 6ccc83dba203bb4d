"""What this host must have, read from the database in one transaction.

A network hosted here gets everything: bridge, segment link, gateway address, dnsmasq
and NAT. A network that only has instances placed on this host (a compute host) gets
the bridge and its segment, so its instances reach the network host over the segment.
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass, field, replace
from functools import cached_property
from typing import Any

from sqlalchemy import Connection, Row, or_, select

from core.config import Settings
from core.linux.secgroup_desired import DesiredFilter, read_filter
from core.store.db import Database
from core.store.schema import fixed_ips, floating_ips, instances, networks, projects


@dataclass(frozen=True)
class DhcpHost:
    mac: str
    hostname: str
    address: str


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

    @cached_property
    def hosts_file(self) -> str:
        """The dnsmasq hosts file, exactly: one ``MAC,hostname.domain,IP`` line each."""
        suffix = f".{self.domain},"
        return "".join([f"{h.mac},{h.hostname}{suffix}{h.address}\n" for h in self.hosts])


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
    # None on a compute host (and for Flat): no address, no dnsmasq there.
    gateway: str | None
    prefixlen: int
    broadcast: str
    dhcp: Dhcp | None
    # VLAN networks belong to one project each and must not reach one another.
    isolated: bool


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

    @property
    def public_interfaces(self) -> tuple[str, ...]:
        names = {f.interface for f in self.floating}
        if self.snat_ranges:
            names.add(self.public_interface)
        return tuple(sorted(names))

    @property
    def isolated_bridges(self) -> tuple[str, ...]:
        return tuple(sorted(n.bridge for n in self.networks if n.isolated))


def read_desired(db: Database, settings: Settings) -> DesiredHost:
    with db.read() as connection:
        return desired_from_connection(connection, settings)


def desired_from_connection(connection: Connection, settings: Settings) -> DesiredHost:
    host = settings.host
    served = (
        select(fixed_ips.c.network_id)
        .join(instances, fixed_ips.c.instance_id == instances.c.id)
        .where(instances.c.host == host)
    )
    rows = connection.execute(
        select(networks, projects.c.name.label("project_name"))
        .outerjoin(projects, networks.c.project_id == projects.c.id)
        .where(or_(networks.c.host == host, networks.c.id.in_(served)))
        .order_by(networks.c.id)
    ).all()
    hosted_ids = [n.id for n in rows if n.host == host and n.manager != "flat"]
    leases = _dhcp_hosts(connection, hosted_ids)
    held = _held_leases(connection, hosted_ids)
    wanted = tuple(
        _network(
            network,
            network.host == host,
            leases.get(network.id, ()),
            held.get(network.id, ()),
            settings,
        )
        for network in rows
    )
    fixed = fixed_ips.alias("fixed")
    pairs = connection.execute(
        select(floating_ips.c.address, fixed.c.address, floating_ips.c.interface)
        .join(fixed, floating_ips.c.fixed_ip_id == fixed.c.id)
        .where(floating_ips.c.host == host)
        .order_by(floating_ips.c.address_int)
    ).all()
    return DesiredHost(
        host=host,
        public_interface=settings.public_interface,
        vxlan_group=settings.vxlan_group,
        vxlan_port=settings.vxlan_port,
        networks=wanted,
        floating=tuple(FloatingNat(f, x, i) for f, x, i in pairs),
        snat_ranges=tuple(n.cidr for n in wanted if n.gateway is not None),
        security=read_filter(connection, host),
    )


def _dhcp_hosts(connection: Connection, network_ids: list[int]) -> dict[int, tuple[DhcpHost, ...]]:
    if not network_ids:
        return {}
    found: dict[int, list[DhcpHost]] = {}
    rows = connection.execute(
        select(fixed_ips.c.network_id, fixed_ips.c.mac, instances.c.name, fixed_ips.c.address)
        .join(instances, fixed_ips.c.instance_id == instances.c.id)
        .where(fixed_ips.c.network_id.in_(network_ids), fixed_ips.c.mac.is_not(None))
        .order_by(fixed_ips.c.address_int)
    )
    for network_id, mac, name, address in rows:
        found.setdefault(network_id, []).append(DhcpHost(str(mac), name, address))
    return {k: tuple(v) for k, v in found.items()}


def _held_leases(
    connection: Connection, network_ids: list[int]
) -> dict[int, tuple[HeldLease, ...]]:
    if not network_ids:
        return {}
    found: dict[int, list[HeldLease]] = {}
    rows = connection.execute(
        select(fixed_ips.c.network_id, fixed_ips.c.address, fixed_ips.c.mac)
        .where(
            fixed_ips.c.network_id.in_(network_ids),
            fixed_ips.c.instance_id.is_(None),
            fixed_ips.c.leased.is_(True),
            fixed_ips.c.mac.is_not(None),
        )
        .order_by(fixed_ips.c.address_int)
    )
    for network_id, address, mac in rows:
        found.setdefault(network_id, []).append(HeldLease(address, str(mac)))
    return {k: tuple(v) for k, v in found.items()}


def _network(
    network: Row[Any],
    hosted_here: bool,
    hosts: tuple[DhcpHost, ...],
    held: tuple[HeldLease, ...],
    settings: Settings,
) -> DesiredNetwork:
    subnet = ipaddress.IPv4Network(network.cidr)
    flat = network.manager == "flat"
    segment = None
    if network.manager == "vlan" and network.vlan is not None:
        segment = Segment(network.segmentation or "vlan", network.vlan, settings.vlan_interface)
    dhcp = None
    if hosted_here and not flat:
        dhcp = Dhcp(
            netmask=network.netmask,
            dhcp_start=network.dhcp_start,
            dns=tuple(d for d in (network.dns1, network.dns2) if d),
            domain=settings.dhcp_domain,
            lease_time=settings.dhcp_lease_time,
            hosts=hosts,
            held_leases=held,
        )
    return DesiredNetwork(
        id=network.id,
        cidr=network.cidr,
        manager=network.manager,
        label=network.label,
        project=network.project_name,
        bridge=network.bridge,
        owns_bridge=not flat,
        bridge_interface=network.bridge_interface,
        segment=segment,
        gateway=network.gateway if hosted_here and not flat else None,
        prefixlen=subnet.prefixlen,
        broadcast=network.broadcast,
        dhcp=dhcp,
        # Only a host that routes (has the gateways) can forward between projects.
        isolated=network.manager == "vlan" and hosted_here,
    )


def fenced(desired: DesiredHost) -> DesiredHost:
    """``desired`` as a host that may no longer serve: its bridges and segments stay (its
    instances keep their links), but no gateway address, DHCP server or NAT."""
    return replace(
        desired,
        networks=tuple(
            replace(network, gateway=None, dhcp=None, isolated=False)
            for network in desired.networks
        ),
        floating=(),
        snat_ranges=(),
    )
