"""What this host has of the metadata service: its server processes, the DNAT table of
each family read in full (the IPv4 one by key, for a scoped apply), and the bridges that
carry fe80::a9fe:a9fe."""

from __future__ import annotations

import shutil
import socket
import struct
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING

from core.linux import nfttable, processes
from core.linux.metadata.address import carrying
from core.linux.metadata.server import listens, pid_in
from core.linux.metadata.spec import (
    IPV4,
    IPV6,
    PORTS,
    PROGRAMS,
    ROUTES,
    DesiredMetadata,
    Family,
    ServerFiles,
    table_marker,
)

if TYPE_CHECKING:
    from core.linux.nftelements import Lookup


@dataclass(frozen=True)
class ObservedTable:
    """One family's DNAT table."""

    table: bool = False
    layout_ok: bool = False
    routes: dict[str, tuple[str, int]] = field(default_factory=dict)
    ports: frozenset[int] = frozenset()
    # The table could not be read (no CAP_NET_ADMIN): its operations are left out.
    unread: bool = False
    # Set when only these bridges' routes were looked up (a scoped apply).
    seen: frozenset[str] | None = None


@dataclass(frozen=True)
class ObservedMetadata:
    ipv4: ObservedTable = ObservedTable()
    ipv6: ObservedTable = ObservedTable()
    servers: tuple[processes.Process, ...] = ()
    # Whether something listens on the metadata port in the namespace.
    answers: bool = False
    # Bridges (any link) that carry fe80::a9fe:a9fe.
    carrying: frozenset[str] = frozenset()


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
    want: DesiredMetadata,
    *,
    nft_found: bool,
    may_change: bool = True,
) -> ObservedMetadata:
    servers = find_servers(want.files, netns)
    return ObservedMetadata(
        read_table(IPV4, nft_binary, netns, want, nft_found=nft_found, may_change=may_change),
        read_table(IPV6, nft_binary, netns, want, nft_found=nft_found, may_change=may_change),
        servers,
        len(servers) == 1 and listens(netns, want.port),
        carrying(netns),
    )


def read_table(
    family: Family,
    nft_binary: str,
    netns: str | None,
    want: DesiredMetadata,
    *,
    nft_found: bool,
    may_change: bool = True,
) -> ObservedTable:
    """A family's table, in one listing: asked for while a network here is served in
    that family, or while netcon's marker says it made it."""
    served = want.routes if family == IPV4 else want.routes6
    found = nfttable.read(
        family.table,
        nft_binary,
        netns,
        want.files.state_dir,
        wanted=bool(want.routes) and bool(served) and nft_found,
        may_change=may_change,
    )
    gateways: dict[str, tuple[str, int]] = {}
    for bridge, target in found.elements.get(ROUTES, []):
        gateway, port = target["concat"]
        gateways[str(bridge)] = (str(gateway), int(port))
    ports = frozenset(int(p) for p in found.elements.get(PORTS, []))
    return ObservedTable(found.present, found.layout_ok, gateways, ports, found.unread)


def observe_scoped(
    lookup: Callable[[], Lookup],
    nft_binary: str,
    netns: str | None,
    want: DesiredMetadata,
    bridges: frozenset[str],
    *,
    may_change: bool = True,
) -> ObservedMetadata:
    """What the host has of the server and of these bridges' IPv4 routes, asked by
    key: the server through its pid file, the routes from the kernel over nfnetlink.
    Whatever cannot be known that way (no pid file, no table yet) is looked at in full,
    as is the IPv6 table (a few dual-stack networks' routes)."""
    servers = _server_by_pid_file(want)
    if servers is None:
        servers = find_servers(want.files, netns)
    nft_found = shutil.which(nft_binary) is not None
    answers = len(servers) == 1 and listens(netns, want.port)
    six = read_table(IPV6, nft_binary, netns, want, nft_found=nft_found, may_change=may_change)
    have = ObservedMetadata(ipv6=six, servers=servers, answers=answers, carrying=carrying(netns))
    if not want.routes and not table_marker(want.files).exists():
        return have
    source = lookup() if nft_found and table_marker(want.files).exists() else None
    if source is None or not source.sets_exist(IPV4.table.name, (ROUTES, PORTS)):
        four = read_table(IPV4, nft_binary, netns, want, nft_found=nft_found, may_change=may_change)
        return replace(have, ipv4=four)
    from core.linux.nftelements import ifname_key

    names = sorted(bridges)
    found = source.get(IPV4.table.name, ROUTES, [ifname_key(name) for name in names])
    routes = {}
    for name, element in zip(names, found, strict=True):
        if element is not None and element.data is not None and len(element.data) >= 6:
            (port,) = struct.unpack("!H", element.data[4:6])
            routes[name] = (socket.inet_ntoa(element.data[:4]), port)
    (guard,) = source.get(IPV4.table.name, PORTS, [struct.pack("!H", want.port)])
    ports = frozenset({want.port}) if guard is not None else frozenset()
    return replace(have, ipv4=ObservedTable(True, True, routes, ports, seen=frozenset(bridges)))


def _server_by_pid_file(want: DesiredMetadata) -> tuple[processes.Process, ...] | None:
    """The server its pid file names, if that process runs this command line."""
    pid = pid_in(want.files.pid)
    argv = processes.argv_of(pid) if pid is not None else None
    if pid is None or argv is None or argv[1:] != want.argv[1:]:
        return None
    return (processes.Process(pid, processes.parent(pid), argv, here=False),)
