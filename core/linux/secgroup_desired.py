"""The security-group filter this host must have, read inside desired.py's one transaction.

A host filters the ports of the instances placed on it: each port by its name (see
ports.py), MAC and fixed IP, plus the rules of every group those instances are in and
the members of every group those rules name as a source (wherever those members run).
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import Connection, bindparam, func, select

from core.linux.ports import port_name
from core.store.schema import (
    fixed_ips,
    instance_security_groups,
    instances,
    networks,
    projects,
    security_group_rules,
    security_groups,
)


@dataclass(frozen=True)
class FilteredPort:
    name: str
    instance: str
    mac: str
    address: str
    groups: tuple[int, ...]  # ids, ascending
    # Its global IPv6 address on a dual-stack network (None: IPv4 only).
    address_v6: str | None = None


@dataclass(frozen=True)
class GroupRule:
    id: int
    protocol: str
    from_port: int
    to_port: int
    cidr: str | None
    source: int | None  # the source group's id


@dataclass(frozen=True)
class FilteredGroup:
    id: int
    label: str  # project/name
    rules: tuple[GroupRule, ...]


@dataclass(frozen=True)
class SourceGroup:
    id: int
    label: str
    members: tuple[tuple[str, str], ...]  # (fixed address, instance), by address


@dataclass(frozen=True)
class DesiredFilter:
    ports: tuple[FilteredPort, ...] = ()
    groups: tuple[FilteredGroup, ...] = ()
    sources: tuple[SourceGroup, ...] = ()
    # The dnsmasq addresses (gateways) of the networks these ports are on.
    dhcp_servers: tuple[str, ...] = ()

    @property
    def keyed(self) -> bool:
        """Whether this is only the part a change names (secgroup_keyed.KeyedFilter)."""
        return False

    def labels(self) -> dict[int, str]:
        found = {g.id: g.label for g in self.sources}
        found.update((g.id, g.label) for g in self.groups)
        return found

    def label(self, group_id: int) -> str:
        return self.labels().get(group_id, f"group {group_id}")


def read_filter(connection: Connection, host: str) -> DesiredFilter:
    # Imported here: desired.py reads this module's filter in its own transaction.
    from core.linux.desired import own_gateway

    rows = connection.execute(
        select(
            instances.c.id,
            instances.c.name,
            fixed_ips.c.mac,
            fixed_ips.c.address,
            fixed_ips.c.address_v6,
            # Where its DHCP answers come from: this host's own address on a multi-host
            # network, else the network's gateway (on its network host).
            func.coalesce(own_gateway(), networks.c.gateway).label("gateway"),
        )
        .join(fixed_ips, fixed_ips.c.instance_id == instances.c.id)
        .join(networks, fixed_ips.c.network_id == networks.c.id)
        .where(instances.c.host == bindparam("host"), fixed_ips.c.mac.is_not(None))
        .order_by(fixed_ips.c.address_int),
        {"host": host},
    ).all()
    if not rows:
        return DesiredFilter()
    memberships: dict[int, list[int]] = {}
    for instance_id, group_id in connection.execute(
        select(instance_security_groups.c.instance_id, instance_security_groups.c.security_group_id)
        .join(instances, instances.c.id == instance_security_groups.c.instance_id)
        .where(instances.c.host == host)
        .order_by(instance_security_groups.c.security_group_id)
    ):
        memberships.setdefault(instance_id, []).append(group_id)
    ports = tuple(
        FilteredPort(
            port_name(mac), name, mac, address, tuple(memberships.get(instance_id, ())), address_v6
        )
        for instance_id, name, mac, address, address_v6, _ in rows
    )
    used = sorted({g for groups in memberships.values() for g in groups})
    rules: dict[int, list[GroupRule]] = {g: [] for g in used}
    for row in connection.execute(
        select(
            security_group_rules.c.group_id,
            security_group_rules.c.id,
            security_group_rules.c.protocol,
            security_group_rules.c.from_port,
            security_group_rules.c.to_port,
            security_group_rules.c.cidr,
            security_group_rules.c.source_group_id,
        )
        .where(security_group_rules.c.group_id.in_(used))
        .order_by(security_group_rules.c.id)
    ):
        rules[row[0]].append(GroupRule(*row[1:]))
    source_ids = sorted({r.source for rs in rules.values() for r in rs if r.source is not None})
    labels = _labels(connection, sorted({*used, *source_ids}))
    members: dict[int, list[tuple[str, str]]] = {s: [] for s in source_ids}
    for group_id, address, name in connection.execute(
        select(instance_security_groups.c.security_group_id, fixed_ips.c.address, instances.c.name)
        .join(fixed_ips, fixed_ips.c.instance_id == instance_security_groups.c.instance_id)
        .join(instances, instances.c.id == instance_security_groups.c.instance_id)
        .where(instance_security_groups.c.security_group_id.in_(source_ids))
        .order_by(fixed_ips.c.address_int)
    ):
        members[group_id].append((address, name))
    return DesiredFilter(
        ports=ports,
        groups=tuple(FilteredGroup(g, labels[g], tuple(rules[g])) for g in used),
        sources=tuple(SourceGroup(s, labels[s], tuple(members[s])) for s in source_ids),
        dhcp_servers=tuple(sorted({row.gateway for row in rows})),
    )


def _labels(connection: Connection, ids: list[int]) -> dict[int, str]:
    if not ids:
        return {}
    return {
        group_id: f"{project}/{name}"
        for group_id, project, name in connection.execute(
            select(security_groups.c.id, projects.c.name, security_groups.c.name)
            .join(projects, projects.c.id == security_groups.c.project_id)
            .where(security_groups.c.id.in_(ids))
        )
    }
