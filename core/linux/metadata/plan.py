"""The metadata part of the host plan: server and DNAT wanted against what the host has."""

from __future__ import annotations

from dataclasses import replace

from core.linux.metadata.observe import ObservedMetadata
from core.linux.metadata.operations import (
    CreateMetadataTable,
    DeleteMetadataRoute,
    DeleteMetadataTable,
    SetMetadataPort,
    SetMetadataRoute,
    StartMetadataServer,
    StopMetadataServer,
)
from core.linux.metadata.spec import DesiredMetadata
from core.linux.operations import Operation


def plan(
    want: DesiredMetadata,
    have: ObservedMetadata,
    *,
    nft_found: bool,
    held: frozenset[str] = frozenset(),
) -> list[Operation]:
    """What makes the host's server and DNAT match ``want`` (empty when they do); the
    routes of ``held`` bridges (networks held back by a problem) stay as they are."""
    ops: list[Operation] = []
    serving = bool(want.routes)
    ops += _plan_server(want, have, serving)
    if not nft_found or have.unread:
        return ops  # the host plan already says nft is missing when NAT needs it
    if not serving:
        if have.table:
            ops.append(DeleteMetadataTable(want.files))
        return ops
    routes = dict(have.routes)
    ports = set(have.ports)
    if not have.table or not have.layout_ok:
        ops.append(CreateMetadataTable(have.table, want.files))
        routes, ports = {}, set()
    wanted = {r.bridge: (r.gateway, want.port) for r in want.routes}
    if have.seen is not None:
        wanted = {b: target for b, target in wanted.items() if b in have.seen}
    for bridge in held:
        if bridge in routes:
            wanted[bridge] = routes[bridge]
        else:
            wanted.pop(bridge, None)
    ops += [DeleteMetadataRoute(b) for b in sorted(set(routes) - set(wanted))]
    ops += [
        SetMetadataRoute(bridge, gateway, port, replaces=bridge in routes)
        for bridge, (gateway, port) in sorted(wanted.items())
        if routes.get(bridge) != (gateway, port)
    ]
    ops += [SetMetadataPort(p, add=False) for p in sorted(ports - {want.port})]
    if want.port not in ports:
        ops.append(SetMetadataPort(want.port, add=True))
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


# -- carrying them out ---------------------------------------------------------------
