"""The security-group filter this host must have, read inside the one transaction that
reads its desired state (core.desired.host).

A host filters the ports of the instances placed on it: each port by its name (see
core/linux/ports.py), MAC and fixed IP, plus the rules of every group those instances
are in and the members of every group those rules name as a source (wherever those
members run).
"""

from __future__ import annotations

import functools
import ipaddress
from typing import Any

from sqlalchemy import Connection, Select, bindparam, func, select

from core.desired.served import own_gateway
from core.linux.ports import port_name
from core.linux.secgroups.spec import (
    DesiredFilter,
    FilteredGroup,
    FilteredPort,
    GroupRule,
    SourceGroup,
)
from core.store.schema import (
    fixed_ips,
    instance_security_groups,
    instances,
    networks,
    projects,
    security_group_rules,
    security_groups,
)


def read_filter(connection: Connection, host: str) -> DesiredFilter:
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
    ).all():
        memberships.setdefault(instance_id, []).append(group_id)
    ports = tuple(
        FilteredPort(
            port_name(mac), name, mac, address, tuple(memberships.get(instance_id, ())), address_v6
        )
        for instance_id, name, mac, address, address_v6, _ in rows
    )
    used = sorted({g for groups in memberships.values() for g in groups})
    rules: dict[int, list[GroupRule]] = {g: [] for g in used}
    for row in connection.execute(rules_of(), {"groups": used}).all():
        rules[row[0]].append(GroupRule(*row[1:]))
    source_ids = sorted({r.source for rs in rules.values() for r in rs if r.source is not None})
    labels = _labels(connection, sorted({*used, *source_ids}))
    members: dict[int, list[tuple[str, str]]] = {s: [] for s in source_ids}
    members_v6: dict[int, list[tuple[str, str]]] = {s: [] for s in source_ids}
    for group_id, address, name, address_v6 in connection.execute(
        members_of(), {"groups": source_ids}
    ).all():
        members[group_id].append((address, name))
        if address_v6 is not None:
            members_v6[group_id].append((address_v6, name))
    return DesiredFilter(
        ports=ports,
        groups=tuple(FilteredGroup(g, labels[g], tuple(rules[g])) for g in used),
        sources=tuple(
            SourceGroup(s, labels[s], tuple(members[s]), tuple(sorted_v6(members_v6[s])))
            for s in source_ids
        ),
        dhcp_servers=tuple(sorted({row.gateway for row in rows})),
    )


def sorted_v6(members: list[tuple[str, str]]) -> list[tuple[str, str]]:
    """IPv6 members by address (the database orders members by their IPv4 address)."""
    return sorted(members, key=lambda pair: ipaddress.IPv6Address(pair[0]))


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


# The rules of groups, and the members of source groups, as both readers ask for them
# (the whole filter, and a change's keys); built once.


@functools.cache
def rules_of() -> Select[Any]:
    return (
        select(
            security_group_rules.c.group_id,
            security_group_rules.c.id,
            security_group_rules.c.protocol,
            security_group_rules.c.from_port,
            security_group_rules.c.to_port,
            security_group_rules.c.cidr,
            security_group_rules.c.source_group_id,
            security_group_rules.c.ethertype,
        )
        .where(security_group_rules.c.group_id.in_(bindparam("groups", expanding=True)))
        .order_by(security_group_rules.c.id)
    )


@functools.cache
def members_of() -> Select[Any]:
    return (
        select(
            instance_security_groups.c.security_group_id,
            fixed_ips.c.address,
            instances.c.name,
            fixed_ips.c.address_v6,
        )
        .join(fixed_ips, fixed_ips.c.instance_id == instance_security_groups.c.instance_id)
        .join(instances, instances.c.id == instance_security_groups.c.instance_id)
        .where(
            instance_security_groups.c.security_group_id.in_(bindparam("groups", expanding=True))
        )
        .order_by(fixed_ips.c.address_int)
    )
