"""The desired state of one host, read from the database in one transaction (what each
network gets on a network host, a compute host or a multi-host network is said where the
state's types are, in core.linux.desired)."""

from __future__ import annotations

import functools
import ipaddress
from collections.abc import Sequence
from dataclasses import replace
from typing import Any

from sqlalchemy import (
    Connection,
    Row,
    Select,
    bindparam,
    or_,
    select,
)

from core.config import Settings
from core.desired.secgroups import read_filter
from core.desired.secgroups_keyed import read_keyed_filter
from core.desired.served import own_gateway, served_here
from core.linux.desired import (
    DesiredHost,
    DesiredNetwork,
    Dhcp,
    DhcpHost,
    FloatingNat,
    HeldLease,
    NetworkKeys,
    Segment,
)
from core.linux.ipv6_host import network_v6
from core.linux.ports import port_name
from core.linux.resolvers import host_resolvers
from core.linux.scope import Reach, Scope
from core.managers.base import effective_mtu
from core.managers.capabilities import capabilities, kinds
from core.store.db import Database
from core.store.schema import fixed_ips, floating_ips, instances, networks, projects


class ScopeUnknown(Exception):
    """A scoped network has no row any more: only a full comparison finds its links."""


def read_desired(db: Database, settings: Settings, scope: Scope | None = None) -> DesiredHost:
    with db.read() as connection:
        return desired_from_connection(connection, settings, scope)


def desired_from_connection(
    connection: Connection, settings: Settings, scope: Scope | None = None
) -> DesiredHost:
    """Everything this host must have; with ``scope``, only what the scope names (and
    ``reach`` says what that covers). Raises ScopeUnknown if a scoped network is gone."""
    host = settings.host
    served, query = served_here(), _networks()
    reach = None
    if scope is None:
        rows = connection.execute(
            query.where(or_(networks.c.host == host, networks.c.id.in_(served))).order_by(
                networks.c.id
            ),
            {"host": host},
        ).all()
    else:
        named: Sequence[Row[Any]] = []
        if scope.network_ids:
            named = connection.execute(
                query.where(networks.c.id.in_(sorted(scope.network_ids))).order_by(networks.c.id),
                {"host": host},
            ).all()
        if len(named) != len(scope.network_ids):
            raise ScopeUnknown
        here = set()
        if named:
            here = set(
                connection.execute(
                    served.where(fixed_ips.c.network_id.in_([n.id for n in named])).distinct(),
                    {"host": host},
                ).scalars()
            )
        rows = [n for n in named if n.host == host or n.id in here]
        reach = _reach(named, scope, settings)
    serving = [n for n in rows if _serves_dhcp(n, host)]
    hosted = [n.id for n in serving]
    keys = _keys(scope)
    keyed = {n.id for n in rows if _keyable(n, host)} if keys is not None else set()
    leases, held = _fixed_with_mac(
        connection,
        host,
        [i for i in hosted if i not in keyed],
        [n.id for n in serving if n.multi_host],
        scoped=scope is not None,
    )
    ports = _ports(
        connection, host, [n.id for n in rows if n.id not in keyed] if scope is not None else None
    )
    if keys is not None and keyed:
        # A launch or termination: the hosts and ports of its addresses alone, whatever
        # the size of the network (the planner keeps the rest of its hosts file).
        addresses = sorted(keys.addresses)
        named_leases, named_held = _fixed_with_mac(
            connection,
            host,
            [i for i in hosted if i in keyed],
            [],
            scoped=True,
            addresses=addresses,
        )
        leases |= named_leases
        held |= named_held
        ports |= _ports(connection, host, sorted(keyed), addresses=addresses)
    upstream = (settings.dns_servers or host_resolvers(settings.netns)) if hosted else ()
    wanted = tuple(
        replace(
            _network(
                network,
                host,
                leases.get(network.id, ()),
                held.get(network.id, ()),
                settings,
                upstream,
            ),
            ports=ports.get(network.id, ()),
            keys=keys if network.id in keyed else None,
        )
        for network in rows
    )
    pairs: Sequence[Any] = []
    if scope is None:
        pairs = connection.execute(_nat_pairs(scoped=False), {"host": host}).all()
    elif scope.floating:
        pairs = connection.execute(
            _nat_pairs(scoped=True), {"host": host, "addresses": sorted(scope.floating)}
        ).all()
    return DesiredHost(
        host=host,
        public_interface=settings.public_interface,
        vxlan_group=settings.vxlan_group,
        vxlan_port=settings.vxlan_port,
        networks=wanted,
        floating=tuple(FloatingNat(f, x, i) for f, x, i in pairs),
        snat_ranges=tuple(n.cidr for n in wanted if n.gateway is not None),
        # The filter is compared whole (element by element), so a scope brings it in only
        # when the change touched networks (their DHCP servers and ports are in it),
        # instance ports or security groups: never for a floating IP alone.
        security=(
            read_keyed_filter(connection, host, scope.filter_groups, scope.filter_ports)
            if scope is not None and scope.filter_keyed
            else read_filter(connection, host)
            if scope is None or scope.security or scope.network_ids
            else None
        ),
        reach=reach,
    )


# The queries below are built once: an agent asks them on every change it applies.


@functools.cache
def _networks() -> Select[Any]:
    return select(
        networks, projects.c.name.label("project_name"), own_gateway().label("own_gateway")
    ).outerjoin(projects, networks.c.project_id == projects.c.id)


@functools.cache
def _nat_pairs(*, scoped: bool) -> Select[Any]:
    """The floating → fixed pairs NATed on a host (of some addresses only, when scoped)."""
    fixed = fixed_ips.alias("fixed")
    query = (
        select(floating_ips.c.address, fixed.c.address, floating_ips.c.interface)
        .join(fixed, floating_ips.c.fixed_ip_id == fixed.c.id)
        .where(floating_ips.c.host == bindparam("host"))
        .order_by(floating_ips.c.address_int)
    )
    if scoped:
        query = query.where(floating_ips.c.address.in_(bindparam("addresses", expanding=True)))
    return query


def _reach(named: Sequence[Row[Any]], scope: Scope, settings: Settings) -> Reach:
    links = {n.bridge for n in named}
    links |= {_segment(n, settings).ifname for n in named if _segment(n, settings) is not None}  # type: ignore[union-attr]
    projects_: frozenset[str] | None = frozenset(
        n.project_name for n in named if n.project_name is not None
    )
    if any(capabilities(n.manager).runs_vpn and n.project_name is None for n in named):
        projects_ = None  # a released network: its last project's VPN is unknown here
    return Reach(
        links=frozenset(links),
        bridges=frozenset(n.bridge for n in named),
        cidrs=frozenset(str(ipaddress.IPv4Network(n.cidr)) for n in named),
        floating=scope.floating,
        projects=projects_,
    )


def _keys(scope: Scope | None) -> NetworkKeys | None:
    """The addresses a launch or termination named: its networks are read at them."""
    if scope is None or not scope.filter_keyed or not scope.filter_ports:
        return None
    return NetworkKeys(
        frozenset(address for _, address in scope.filter_ports),
        frozenset(port_name(mac) for mac, _ in scope.filter_ports),
    )


def _keyable(network: Row[Any], host: str) -> bool:
    """Whether a network can be read at a change's addresses: its hosts file is one line
    an address, and every one of them is this host's to serve (or none is)."""
    if network.multi_host or network.cidr_v6 is not None:
        return False
    return _serves_dhcp(network, host) or not capabilities(network.manager).serves_dhcp


def _fixed_with_mac(
    connection: Connection,
    host: str,
    network_ids: list[int],
    multi_host: list[int],
    *,
    scoped: bool,
    addresses: list[str] | None = None,
) -> tuple[dict[int, tuple[DhcpHost, ...]], dict[int, tuple[HeldLease, ...]]]:
    """The DHCP hosts (addresses with an instance) and held leases (released, still
    leased) of the networks whose DHCP this host serves, in one query; of the
    ``multi_host`` ones among them, each instance with the host it runs on. With
    ``addresses``, of those fixed addresses only (found by their unique index).

    Only addresses with a MAC qualify, which the unique index on mac finds directly;
    going by network would walk every address of every network.
    """
    if not network_ids:
        return {}, {}
    served_here = networks.c.host == host
    if multi_host:
        served_here = or_(served_here, fixed_ips.c.network_id.in_(multi_host))
    query = (
        select(
            fixed_ips.c.network_id,
            fixed_ips.c.mac,
            instances.c.name,
            fixed_ips.c.address,
            fixed_ips.c.instance_id,
            fixed_ips.c.leased,
            instances.c.host,
            fixed_ips.c.address_v6,
        )
        .join(networks, fixed_ips.c.network_id == networks.c.id)
        .outerjoin(instances, fixed_ips.c.instance_id == instances.c.id)
        .where(
            fixed_ips.c.mac.is_not(None),
            served_here,
            networks.c.manager.in_(kinds(serves_dhcp=True)),
        )
        .order_by(fixed_ips.c.address_int)
    )
    if scoped:
        query = query.where(fixed_ips.c.network_id.in_(network_ids))
    if addresses is not None:
        query = query.where(fixed_ips.c.address.in_(addresses))
    found: dict[int, list[DhcpHost]] = {}
    held: dict[int, list[HeldLease]] = {}
    for network_id, mac, name, address, instance_id, leased, runs_on, v6 in connection.execute(
        query
    ):
        if instance_id is not None:
            found.setdefault(network_id, []).append(
                DhcpHost(str(mac), name, address, runs_on, bool(leased), v6)
            )
        elif leased:
            held.setdefault(network_id, []).append(HeldLease(address, str(mac)))
    return (
        {k: tuple(v) for k, v in found.items()},
        {k: tuple(v) for k, v in held.items()},
    )


def _ports(
    connection: Connection,
    host: str,
    network_ids: list[int] | None,
    addresses: list[str] | None = None,
) -> dict[int, tuple[str, ...]]:
    """The port names of this host's instances, by network (of ``network_ids`` only, when
    given; of the fixed ``addresses`` only, when given)."""
    if network_ids is not None and not network_ids:
        return {}
    query = (
        select(fixed_ips.c.network_id, fixed_ips.c.mac)
        .join(instances, fixed_ips.c.instance_id == instances.c.id)
        .where(instances.c.host == host, fixed_ips.c.mac.is_not(None))
        .order_by(fixed_ips.c.address_int)
    )
    if network_ids is not None:
        query = query.where(fixed_ips.c.network_id.in_(network_ids))
    if addresses is not None:
        query = query.where(fixed_ips.c.address.in_(addresses))
    found: dict[int, list[str]] = {}
    for network_id, mac in connection.execute(query):
        found.setdefault(network_id, []).append(port_name(str(mac)))
    return {k: tuple(v) for k, v in found.items()}


def _segment(network: Row[Any], settings: Settings) -> Segment | None:
    if capabilities(network.manager).isolates and network.vlan is not None:
        return Segment(network.segmentation or "vlan", network.vlan, settings.vlan_interface)
    return None


def _gateway_here(network: Row[Any], host: str) -> str | None:
    """The address ``host`` routes the network's guests from: on a multi-host network its
    own while it has instances there; else the network's gateway on its network host."""
    if not capabilities(network.manager).serves_dhcp:
        return None
    if network.own_gateway is not None:
        return str(network.own_gateway)
    return str(network.gateway) if network.host == host else None


def _serves_dhcp(network: Row[Any], host: str) -> bool:
    """Whether ``host`` runs the network's dnsmasq: on a multi-host network every host
    with its instances does (for them alone), else its network host."""
    if not capabilities(network.manager).serves_dhcp:
        return False
    if network.multi_host:
        return network.own_gateway is not None
    return bool(network.host == host)


def _network(
    network: Row[Any],
    host: str,
    hosts: tuple[DhcpHost, ...],
    held: tuple[HeldLease, ...],
    settings: Settings,
    upstream: tuple[str, ...] = (),
) -> DesiredNetwork:
    subnet = ipaddress.IPv4Network(network.cidr)
    able = capabilities(network.manager)
    segment = _segment(network, settings)
    # A bridge the admin owns (Flat) keeps the admin's MTU too.
    mtu = effective_mtu(network, settings.physical_mtu) if able.owns_bridge else None
    gateway = _gateway_here(network, host)
    dhcp = None
    if gateway is not None and _serves_dhcp(network, host):
        own = tuple(h for h in hosts if h.host == host) if network.multi_host else hosts
        dhcp = Dhcp(
            netmask=network.netmask,
            dhcp_start=network.dhcp_start,
            # The network's own servers, or its dnsmasq, which knows its instances' names.
            dns=tuple(d for d in (network.dns1, network.dns2) if d) or (gateway,),
            domain=settings.dhcp_domain,
            lease_time=network.dhcp_lease_time or settings.dhcp_lease_time,
            hosts=own,
            held_leases=held,
            mtu=mtu,
            upstream=upstream,
            names=hosts if network.multi_host else None,
            serving_host=host if network.multi_host else None,
        )
    return DesiredNetwork(
        id=network.id,
        cidr=network.cidr,
        manager=network.manager,
        label=network.label,
        project=network.project_name,
        bridge=network.bridge,
        owns_bridge=able.owns_bridge,
        bridge_interface=(
            settings.flat_interface or network.bridge_interface
            if segment is None
            else network.bridge_interface
        ),
        segment=segment,
        gateway=gateway,
        prefixlen=subnet.prefixlen,
        broadcast=network.broadcast,
        dhcp=dhcp,
        # Only a host that routes (has the gateways) can forward between projects.
        isolated=able.isolates and gateway is not None,
        mtu=mtu,
        network_host=network.host,
        serves_dhcp=able.serves_dhcp,
        runs_vpn=able.runs_vpn,
        ipv6=network_v6(network, gateway),
        dual_stack=network.cidr_v6 is not None,
        multi_host=bool(network.multi_host),
    )
