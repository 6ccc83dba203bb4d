"""What this host has of the metadata service: its server processes, and the DNAT table
read in full or, for a scoped apply, by key."""

from __future__ import annotations

import json
import shutil
import socket
import struct
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Any

from core.errors import HostError
from core.linux import nft, processes
from core.linux.metadata.server import listens, pid_in
from core.linux.metadata.spec import (
    CHAINS,
    FAMILY,
    PORTS,
    PROGRAMS,
    ROUTES,
    TABLE,
    DesiredMetadata,
    ServerFiles,
    table_marker,
)

if TYPE_CHECKING:
    from core.linux.nftelements import Lookup


@dataclass(frozen=True)
class ObservedMetadata:
    table: bool
    layout_ok: bool
    routes: dict[str, tuple[str, int]] = field(default_factory=dict)
    ports: frozenset[int] = frozenset()
    servers: tuple[processes.Process, ...] = ()
    # Whether something listens on the metadata port in the namespace.
    answers: bool = False
    # The table could not be read (no CAP_NET_ADMIN): its operations are left out.
    unread: bool = False
    # Set when only these bridges' routes were looked up (a scoped apply).
    seen: frozenset[str] | None = None


def find_servers(files: ServerFiles, netns: str | None) -> tuple[processes.Process, ...]:
    """The servers of this namespace's state directory. A server runs in the namespace
    of whoever started it (so it reaches the database as the host layer does) and
    listens in ``netns``: whether it is there is seen by asking its port (answers())."""
    marker = f"{files.directory}/"
    found: list[processes.Process] = []
    for program in sorted(PROGRAMS):
        found += [p for p in processes.find(program, marker, netns) if "core.metadata" in p.argv]
    return tuple(sorted(set(found), key=lambda p: p.pid))


def observe(
    nft_binary: str,
    netns: str | None,
    files: ServerFiles,
    port: int,
    *,
    table_wanted: bool,
    may_change: bool = True,
) -> ObservedMetadata:
    servers = find_servers(files, netns)
    answers = len(servers) == 1 and listens(netns, port)
    if not table_wanted and not table_marker(files).exists():
        return ObservedMetadata(table=False, layout_ok=False, servers=servers, answers=answers)
    (result,) = nft.listings(nft_binary, netns, [f"list table {FAMILY} {TABLE}"], numeric=False)
    if result.returncode != 0:
        if "No such file or directory" in result.stderr:
            return ObservedMetadata(False, False, servers=servers, answers=answers)
        if not may_change:
            # `host plan` without CAP_NET_ADMIN: the table is not known, so not planned.
            return ObservedMetadata(False, False, servers=servers, answers=answers, unread=True)
        raise HostError(f"nft: cannot read table {FAMILY} {TABLE}: {result.stderr.strip()}")
    try:
        objects = json.loads(result.stdout)["nftables"]
    except (ValueError, KeyError):
        raise HostError(f"nft: unreadable listing of table {FAMILY} {TABLE}") from None
    return replace(_parse(objects, servers), answers=answers)


def observe_scoped(
    lookup: Callable[[], Lookup],
    nft_binary: str,
    netns: str | None,
    want: DesiredMetadata,
    bridges: frozenset[str],
    *,
    may_change: bool = True,
) -> ObservedMetadata:
    """What the host has of the server and of these bridges' routes, asked by key: the
    server through its pid file, the routes from the kernel over nfnetlink. Whatever
    cannot be known that way (no pid file, no table yet) is looked at in full."""
    servers = _server_by_pid_file(want)
    if servers is None:
        servers = find_servers(want.files, netns)
    answers = len(servers) == 1 and listens(netns, want.port)
    nft_found = shutil.which(nft_binary) is not None
    if not want.routes and not table_marker(want.files).exists():
        return ObservedMetadata(False, False, servers=servers, answers=answers)
    source = lookup() if nft_found and table_marker(want.files).exists() else None
    if source is None or not source.sets_exist(TABLE, (ROUTES, PORTS)):
        full = observe(
            nft_binary,
            netns,
            want.files,
            want.port,
            table_wanted=bool(want.routes) and nft_found,
            may_change=may_change,
        )
        return replace(full, servers=servers, answers=answers)
    from core.linux.nftelements import ifname_key

    names = sorted(bridges)
    found = source.get(TABLE, ROUTES, [ifname_key(name) for name in names])
    routes = {}
    for name, element in zip(names, found, strict=True):
        if element is not None and element.data is not None and len(element.data) >= 6:
            (port,) = struct.unpack("!H", element.data[4:6])
            routes[name] = (socket.inet_ntoa(element.data[:4]), port)
    (guard,) = source.get(TABLE, PORTS, [struct.pack("!H", want.port)])
    return ObservedMetadata(
        table=True,
        layout_ok=True,
        routes=routes,
        ports=frozenset({want.port}) if guard is not None else frozenset(),
        servers=servers,
        answers=answers,
        seen=frozenset(bridges),
    )


def _server_by_pid_file(want: DesiredMetadata) -> tuple[processes.Process, ...] | None:
    """The server its pid file names, if that process runs this command line."""
    pid = pid_in(want.files.pid)
    argv = processes.argv_of(pid) if pid is not None else None
    if pid is None or argv is None or argv[1:] != want.argv[1:]:
        return None
    return (processes.Process(pid, processes.parent(pid), argv, here=False),)


def _parse(
    objects: list[dict[str, Any]], servers: tuple[processes.Process, ...]
) -> ObservedMetadata:
    routes: dict[str, tuple[str, int]] = {}
    ports: set[int] = set()
    sets: set[str] = set()
    rules: dict[str, int] = {}
    for obj in objects:
        if "map" in obj and obj["map"]["name"] == ROUTES:
            sets.add(ROUTES)
            for bridge, target in obj["map"].get("elem", []):
                address, port = target["concat"]
                routes[str(bridge)] = (str(address), int(port))
        elif "set" in obj and obj["set"]["name"] == PORTS:
            sets.add(PORTS)
            ports.update(int(p) for p in obj["set"].get("elem", []))
        elif "chain" in obj:
            rules.setdefault(obj["chain"]["name"], 0)
        elif "rule" in obj:
            chain = obj["rule"]["chain"]
            rules[chain] = rules.get(chain, 0) + 1
    layout_ok = sets == {ROUTES, PORTS} and rules == CHAINS
    return ObservedMetadata(True, layout_ok, routes, frozenset(ports), servers)
