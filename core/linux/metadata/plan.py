"""The metadata part of the host plan: server, DNAT tables of both families and the IPv6
metadata address wanted against what the host has."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import replace

from core.linux.metadata.observe import ObservedMetadata, ObservedTable
from core.linux.metadata.operations import (
    AddMetadataAddress6,
    CreateMetadataTable,
    DeleteMetadataAddress6,
    DeleteMetadataRoute,
    DeleteMetadataTable,
    SetMetadataPort,
    SetMetadataRoute,
    StartMetadataServer,
    StopMetadataServer,
)
from core.linux.metadata.spec import IPV4, IPV6, DesiredMetadata, Family, listening_v6
from core.linux.operations import Operation


def plan(
    want: DesiredMetadata,
    have: ObservedMetadata,
    *,
    nft_found: bool,
    held: frozenset[str] = frozenset(),
    bridges: frozenset[str] | None = None,
) -> list[Operation]:
    """What makes the host's server, DNAT tables and metadata addresses match ``want``
    (empty when they do). ``bridges``: a scoped plan, which compares only these bridges'
    addresses and routes. The routes of ``held`` bridges (networks held back by a
    problem) stay as they are."""
    serving = bool(want.routes)
    six = ipv6_wanted(want, have.ipv6, bridges)
    if six:
        want = listening_v6(want)
    ops = _plan_server(want, have, serving)

    def in_scope(bridge: str, looked: frozenset[str] | None) -> bool:
        return (looked is None or bridge in looked) and bridge not in held

    on = {r.bridge for r in want.routes6} if serving else set()
    ops += [AddMetadataAddress6(b) for b in sorted(on - have.carrying) if in_scope(b, bridges)]
    ops += [DeleteMetadataAddress6(b) for b in sorted(have.carrying - on) if in_scope(b, bridges)]
    if not nft_found:
        return ops  # the host plan already says nft is missing when NAT needs it
    for family, table, routes, wanted, looked in (
        (IPV4, have.ipv4, want.routes, serving, have.ipv4.seen),
        (IPV6, have.ipv6, want.routes6 if serving else (), six, bridges),
    ):
        targets = {r.bridge: (r.gateway, want.port) for r in routes if in_scope(r.bridge, looked)}
        scoped = {b: route for b, route in table.routes.items() if in_scope(b, looked)}
        ops += _plan_table(family, targets, scoped, table, want.port, wanted=wanted)
    return ops


def ipv6_wanted(
    want: DesiredMetadata, have: ObservedTable, bridges: frozenset[str] | None = None
) -> bool:
    """Whether the IPv6 table (and so the server's IPv6 socket, which it guards) is
    wanted: a server runs and a dual-stack network is served. A scoped plan sees only
    the networks of ``bridges``; the table's routes tell it of the others."""
    if not want.routes:
        return False
    if want.routes6:
        return True
    return bridges is not None and any(bridge not in bridges for bridge in have.routes)


def _plan_table(
    family: Family,
    targets: Mapping[str, tuple[str, int]],
    routes: Mapping[str, tuple[str, int]],
    have: ObservedTable,
    port: int,
    *,
    wanted: bool,
) -> list[Operation]:
    """One family's table: ``targets`` and ``routes`` are the wanted and present routes
    of the bridges the plan may change."""
    if have.unread:
        return []
    if not wanted:
        return [DeleteMetadataTable(family=family)] if have.table else []
    ops: list[Operation] = []
    ports = set(have.ports)
    if not have.table or not have.layout_ok:
        ops.append(CreateMetadataTable(have.table, family=family))
        routes, ports = {}, set()
    ops += [DeleteMetadataRoute(b, family=family) for b in sorted(set(routes) - set(targets))]
    ops += [
        SetMetadataRoute(bridge, gateway, to, replaces=bridge in routes, family=family)
        for bridge, (gateway, to) in sorted(targets.items())
        if routes.get(bridge) != (gateway, to)
    ]
    ops += [SetMetadataPort(p, add=False, family=family) for p in sorted(ports - {port})]
    if port not in ports:
        ops.append(SetMetadataPort(port, add=True, family=family))
    return ops


def _plan_server(want: DesiredMetadata, have: ObservedMetadata, serving: bool) -> list[Operation]:
    pids = tuple(p.pid for p in have.servers)
    if not serving:
        return [StopMetadataServer(pids, "no network here needs it")] if pids else []
    start = StartMetadataServer(want.argv, want.env, want.files, want.port)
    if not pids:
        return [start]
    if len(pids) > 1:
        reason = f"{len(pids)} servers run"
    elif have.servers[0].argv[1:] != want.argv[1:]:
        reason = "its command line is out of date"
    elif not have.answers:
        reason = "it does not answer on its port"
    else:
        return []
    return [StopMetadataServer(pids, reason), replace(start, reason="restart")]
