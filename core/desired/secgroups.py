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

from sqlalchemy import Connection, Select, bindparam, select

from core.desired.cursor import ids, rows
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
    security_group_rules,
)

# The whole filter is read with plain SQL on the transaction's own DB-API cursor: no
# statement to compile (a command reads it once, cold) and rows as bare tuples. A "?" is
# a parameter, said as the driver wants it (cursor.rows); the ids of groups, read just
# before, are written into the statement (cursor.ids), which the database answers
# faster than a subquery that finds them again.

_PORTS = """SELECT i.id, i.name, f.mac, f.address, f.address_v6
    FROM instances i
    JOIN fixed_ips f ON f.instance_id = i.id
    WHERE i.host = ? AND f.mac IS NOT NULL
    ORDER BY f.address_int"""

# Where the DHCP answers of the host's ports come from: this host's own address on a
# multi-host network (the one reserved for it), else the network's gateway.
_DHCP_SERVERS = """SELECT DISTINCT COALESCE(
        CASE WHEN n.multi_host THEN (SELECT r.address FROM fixed_ips r
            WHERE r.network_id = n.id AND r.host = ? LIMIT 1) END,
        n.gateway)
    FROM networks n WHERE n.id IN (SELECT f.network_id FROM fixed_ips f
        JOIN instances i ON i.id = f.instance_id WHERE i.host = ? AND f.mac IS NOT NULL)"""

_MEMBERSHIPS = """SELECT m.instance_id, m.security_group_id FROM instance_security_groups m
    JOIN instances i ON i.id = m.instance_id WHERE i.host = ?
    ORDER BY m.security_group_id"""

_RULES = """SELECT group_id, id, protocol, from_port, to_port, cidr, source_group_id, ethertype
    FROM security_group_rules WHERE group_id IN ({groups}) ORDER BY id"""

_LABELS = """SELECT g.id, p.name, g.name FROM security_groups g
    JOIN projects p ON p.id = g.project_id WHERE g.id IN ({groups})"""

_MEMBERS = """SELECT m.security_group_id, f.address, i.name, f.address_v6
    FROM instance_security_groups m
    JOIN fixed_ips f ON f.instance_id = m.instance_id
    JOIN instances i ON i.id = m.instance_id
    WHERE m.security_group_id IN ({groups})
    ORDER BY f.address_int"""


def read_filter(connection: Connection, host: str) -> DesiredFilter:
    ports = rows(connection, _PORTS, (host,))
    if not ports:
        return DesiredFilter()
    memberships: dict[int, list[int]] = {}
    for instance_id, group_id in rows(connection, _MEMBERSHIPS, (host,)):
        memberships.setdefault(instance_id, []).append(group_id)
    used = sorted({g for groups in memberships.values() for g in groups})
    rules: dict[int, list[GroupRule]] = {g: [] for g in used}
    for row in rows(connection, _RULES.format(groups=ids(used)), ()):
        rules[row[0]].append(GroupRule(*row[1:]))
    source_ids = sorted({r.source for rs in rules.values() for r in rs if r.source is not None})
    labels = {
        group_id: f"{project}/{name}"
        for group_id, project, name in rows(
            connection, _LABELS.format(groups=ids({*used, *source_ids})), ()
        )
    }
    members: dict[int, list[tuple[str, str]]] = {s: [] for s in source_ids}
    members_v6: dict[int, list[tuple[str, str]]] = {s: [] for s in source_ids}
    cited = rows(connection, _MEMBERS.format(groups=ids(source_ids)), ()) if source_ids else []
    for group_id, address, name, address_v6 in cited:
        members[group_id].append((address, name))
        if address_v6 is not None:
            members_v6[group_id].append((address_v6, name))
    none: tuple[int, ...] = ()
    return DesiredFilter(
        ports=tuple(
            FilteredPort(
                port_name(mac),
                name,
                mac,
                address,
                tuple(memberships.get(instance_id, none)),
                address_v6,
            )
            for instance_id, name, mac, address, address_v6 in ports
        ),
        groups=tuple(FilteredGroup(g, labels[g], tuple(rules[g])) for g in used),
        sources=tuple(
            SourceGroup(s, labels[s], tuple(members[s]), tuple(sorted_v6(members_v6[s])))
            for s in source_ids
        ),
        dhcp_servers=tuple(sorted(r[0] for r in rows(connection, _DHCP_SERVERS, (host, host)))),
    )


def sorted_v6(members: list[tuple[str, str]]) -> list[tuple[str, str]]:
    """IPv6 members by address (the database orders members by their IPv4 address)."""
    return sorted(members, key=lambda pair: ipaddress.IPv6Address(pair[0]))


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
