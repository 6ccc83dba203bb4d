"""The desired security-group filter at the keys a change names, read from the
database: the rows of the named groups and instance ports alone (see
core/linux/secgroups/keyed.py for what the host layer compares with them)."""

from __future__ import annotations

import functools
import ipaddress
from collections.abc import Iterable
from typing import Any

from sqlalchemy import Connection, Select, bindparam, exists, func, select

from core import ipv6
from core.desired.secgroups import members_of, rules_of, sorted_v6
from core.desired.served import own_gateway
from core.linux.ports import port_name
from core.linux.secgroups.keyed import KeyedFilter
from core.linux.secgroups.spec import FilteredGroup, FilteredPort, GroupRule, SourceGroup
from core.store.schema import (
    fixed_ips,
    instance_security_groups,
    instances,
    networks,
    projects,
    security_group_rules,
    security_groups,
)


def read_keyed_filter(
    connection: Connection,
    host: str,
    groups: Iterable[int],
    ports: Iterable[tuple[str, str]],
) -> KeyedFilter:
    """The filter this host must have at the keys a change names."""
    named = sorted({(mac.lower(), address) for mac, address in ports})
    addresses = [address for _, address in named]
    here: list[FilteredPort] = []
    servers: set[str] = set()
    # Named address -> (the groups its instance is in, the instance's name, its IPv6
    # address).
    memberships: dict[str, tuple[set[int], str, str | None]] = {}
    named_v6: set[str] = set()
    gone_v6: list[tuple[str, str, str]] = []
    ids: list[int] = []
    if addresses:
        rows = connection.execute(_named_ports(), {"host": host, "addresses": addresses}).all()
        ids = [row.id for row in rows]
        by_instance: dict[int, list[int]] = {}
        for instance_id, group_id in connection.execute(_groups_of(), {"ids": ids}):
            by_instance.setdefault(instance_id, []).append(group_id)
        wanted_keys = set(named)
        found: set[tuple[str, str]] = set()
        for row in rows:
            if row.mac is None or (row.mac.lower(), row.address) not in wanted_keys:
                continue
            found.add((row.mac.lower(), row.address))
            mine = tuple(by_instance.get(row.id, ()))
            # A member of a group is in its member set wherever it runs.
            memberships[row.address] = (set(mine), row.name, row.address_v6)
            if row.address_v6 is not None:
                named_v6.add(row.address_v6)
            if row.host == host:
                here.append(
                    FilteredPort(
                        port_name(row.mac), row.name, row.mac, row.address, mine, row.address_v6
                    )
                )
                if row.gateway is not None:
                    servers.add(row.gateway)
        gone_v6 = _gone_v6(connection, wanted_keys - found)
        named_v6.update(address for _, _, address in gone_v6)
    named_groups = sorted({*groups, *(g for port in here for g in port.groups)})
    used = _used_here(connection, host, named_groups)
    rules: dict[int, list[GroupRule]] = {g: [] for g in sorted(used)}
    if used:
        for rule in connection.execute(rules_of(), {"groups": sorted(used)}):
            rules[rule[0]].append(GroupRule(*rule[1:]))
    cited = {r.source for rs in rules.values() for r in rs if r.source is not None}
    # The named groups that are sources here: the named ports' membership in them is
    # compared; a named group no rule here names any more loses its member set.
    keyed = _sources_here(connection, host, named_groups)
    unneeded = frozenset(named_groups) - keyed
    labels = _labels(connection, sorted({*named_groups, *cited}))
    sources = [
        SourceGroup(
            g,
            labels.get(g, f"group {g}"),
            tuple(
                sorted(
                    (
                        (a, name)
                        for a, (member_of, name, _) in memberships.items()
                        if g in member_of
                    ),
                    key=lambda pair: _address_key(pair[0]),
                )
            ),
            tuple(
                sorted_v6(
                    [
                        (v6, name)
                        for member_of, name, v6 in memberships.values()
                        if g in member_of and v6 is not None
                    ]
                )
            ),
        )
        for g in sorted(keyed)
    ]
    # Sources a compared group's rules name that are no named group: made whole if
    # missing (a rule naming a new source), else left as they are.
    whole = sorted(cited - keyed)
    # One a rule of another instance's group here names has its set in the kernel
    # already (its members change by their own keys): its members are not read, which
    # would cost what the group holds.
    standing = _cited_by_others(connection, host, whole, ids)
    unread = [g for g in whole if g not in standing]
    members: dict[int, list[tuple[str, str]]] = {g: [] for g in whole}
    members_v6: dict[int, list[tuple[str, str]]] = {g: [] for g in whole}
    if unread:
        for group_id, address, name, address_v6 in connection.execute(
            members_of(), {"groups": unread}
        ):
            members[group_id].append((address, name))
            if address_v6 is not None:
                members_v6[group_id].append((address_v6, name))
    sources += [
        SourceGroup(
            g, labels.get(g, f"group {g}"), tuple(members[g]), tuple(sorted_v6(members_v6[g]))
        )
        for g in whole
    ]
    return KeyedFilter(
        ports=tuple(here),
        groups=tuple(FilteredGroup(g, labels.get(g, f"group {g}"), tuple(rules[g])) for g in rules),
        sources=tuple(sources),
        dhcp_servers=tuple(sorted(servers)),
        named_ports=tuple((port_name(mac), mac, address) for mac, address in named),
        named_groups=tuple(named_groups),
        keyed_sources=frozenset(keyed),
        unneeded_sources=unneeded,
        unread_sources=frozenset(standing),
        named_v6=tuple(sorted(named_v6)),
        gone_v6=tuple(gone_v6),
    )


def _gone_v6(connection: Connection, gone: set[tuple[str, str]]) -> list[tuple[str, str, str]]:
    """The global IPv6 address each named port that is no more had: from its MAC and the
    dual-stack network its fixed address is in, as it was given at launch."""
    if not gone:
        return []
    rows = connection.execute(
        _networks_of(), {"addresses": sorted({address for _, address in gone})}
    ).all()
    by_address = {row.address: row for row in rows}
    found = []
    for mac, address in sorted(gone):
        row = by_address.get(address)
        if row is None or row.cidr_v6 is None:
            continue
        base = ipaddress.IPv4Network(row.cidr).network_address
        offset = int(ipaddress.IPv4Address(address)) - int(base)
        v6 = ipv6.instance_address(
            ipaddress.IPv6Network(row.cidr_v6), row.ipv6_mode or ipv6.DEFAULT_MODE, mac, offset
        )
        found.append((port_name(mac), mac, str(v6)))
    return found


def _used_here(connection: Connection, host: str, group_ids: list[int]) -> set[int]:
    """The groups some instance of this host is in."""
    if not group_ids:
        return set()
    return set(connection.execute(_used(), {"host": host, "groups": group_ids}).scalars())


def _sources_here(connection: Connection, host: str, group_ids: list[int]) -> set[int]:
    """The groups a rule of a group some instance of this host is in names as source."""
    if not group_ids:
        return set()
    return set(connection.execute(_cited(), {"host": host, "groups": group_ids}).scalars())


def _cited_by_others(
    connection: Connection, host: str, group_ids: list[int], named: list[int]
) -> set[int]:
    """The groups a rule of a group names as source, where that group has an instance on
    this host that is none of the ``named`` ones."""
    if not group_ids:
        return set()
    return set(
        connection.execute(
            _cited(besides_named=True), {"host": host, "groups": group_ids, "named": named}
        ).scalars()
    )


def _labels(connection: Connection, ids: list[int]) -> dict[int, str]:
    if not ids:
        return {}
    return {
        group_id: f"{project}/{name}"
        for group_id, project, name in connection.execute(_group_labels(), {"groups": ids})
    }


# The queries are built once: an agent asks them on every change it applies.


@functools.cache
def _named_ports() -> Select[Any]:
    return (
        select(
            instances.c.id,
            instances.c.name,
            instances.c.host,
            fixed_ips.c.mac,
            fixed_ips.c.address,
            func.coalesce(own_gateway(), networks.c.gateway).label("gateway"),
            fixed_ips.c.address_v6,
        )
        .join(fixed_ips, fixed_ips.c.instance_id == instances.c.id)
        .join(networks, fixed_ips.c.network_id == networks.c.id)
        .where(fixed_ips.c.address.in_(bindparam("addresses", expanding=True)))
    )


@functools.cache
def _networks_of() -> Select[Any]:
    return (
        select(fixed_ips.c.address, networks.c.cidr, networks.c.cidr_v6, networks.c.ipv6_mode)
        .join(networks, fixed_ips.c.network_id == networks.c.id)
        .where(fixed_ips.c.address.in_(bindparam("addresses", expanding=True)))
    )


@functools.cache
def _groups_of() -> Select[Any]:
    return (
        select(
            instance_security_groups.c.instance_id,
            instance_security_groups.c.security_group_id,
        )
        .where(instance_security_groups.c.instance_id.in_(bindparam("ids", expanding=True)))
        .order_by(instance_security_groups.c.security_group_id)
    )


@functools.cache
def _used() -> Select[Any]:
    return (
        select(instance_security_groups.c.security_group_id)
        .join(instances, instances.c.id == instance_security_groups.c.instance_id)
        .where(
            instance_security_groups.c.security_group_id.in_(bindparam("groups", expanding=True)),
            instances.c.host == bindparam("host"),
        )
        .distinct()
    )


@functools.cache
def _cited(*, besides_named: bool = False) -> Select[Any]:
    """The source groups among ``groups`` that a rule of a group with a member on
    ``host`` cites (``besides_named``: a member other than the ``named`` instances)."""
    member_here = (
        select(instance_security_groups.c.instance_id)
        .join(instances, instances.c.id == instance_security_groups.c.instance_id)
        .where(
            instance_security_groups.c.security_group_id == security_group_rules.c.group_id,
            instances.c.host == bindparam("host"),
        )
        .correlate(security_group_rules)
    )
    if besides_named:
        member_here = member_here.where(
            instances.c.id.not_in(bindparam("named", expanding=True))
        )
    return (
        select(security_group_rules.c.source_group_id)
        .where(
            security_group_rules.c.source_group_id.in_(bindparam("groups", expanding=True)),
            exists(member_here),
        )
        .distinct()
    )


@functools.cache
def _group_labels() -> Select[Any]:
    return (
        select(security_groups.c.id, projects.c.name, security_groups.c.name)
        .join(projects, projects.c.id == security_groups.c.project_id)
        .where(security_groups.c.id.in_(bindparam("groups", expanding=True)))
    )


def _address_key(address: str) -> tuple[int, ...]:
    return tuple(int(part) for part in address.split("."))
