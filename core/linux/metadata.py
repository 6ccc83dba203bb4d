"""The metadata service of a network host: its server process and the DNAT to it.

A host that serves at least one FlatDHCP or VLAN network runs one metadata server
(``python -m core.metadata``) in its namespace, listening on ``metadata_port`` on every
address. Guests reach it as nova-network's did: a DNAT of 169.254.169.254:80. Here the
DNAT sends each bridge's guests to the gateway of that bridge's own network, so the
server knows the network a request came from by the address it arrived at, and the
instance by the source address (kept by the DNAT, made trustworthy by anti-spoofing).

The DNAT lives in a small table of its own, ``ip netcon_metadata``: a map from bridge
to (gateway, port), one rule that uses it, and a guard that lets only DNATed
connections (and the host's own, over loopback) reach the server's port, so neither
the public side nor a guest addressing the gateway directly gets past the DNAT.

The server process runs where the host layer runs (so it reaches the database the same
way, which a namespace's own loopback may not) and opens its listening socket inside
the namespace the host layer acts in. It is found as dnsmasq is, by its command line in
/proc (it names this namespace's state directory), so one whose pid file was lost is
still seen; it is started when missing, restarted when its command line is out of date
or its port does not answer, and stopped when no network here needs it. Every step is a
plan operation.
"""

from __future__ import annotations

import json
import os
import shutil
import socket
import struct
import subprocess
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from core.config import Settings
from core.errors import HostError
from core.linux import namespace, nft, processes
from core.linux.operations import Operation

if TYPE_CHECKING:
    from core.linux.nftelements import Lookup

ADDRESS = "169.254.169.254"
FAMILY = "ip"
TABLE = "netcon_metadata"
ROUTES = "gateways"
PORTS = "server_port"
CHAINS = {"prerouting": 1, "input": 2}
# How long an apply waits for a new server to listen before it says it failed.
START_TIMEOUT = 15.0
# The interpreter names the server may run under (the agent and the command line may
# be started through different names of the same Python).
PROGRAMS = frozenset(
    {"python", "python3", f"python3.{sys.version_info.minor}", os.path.basename(sys.executable)}
)


@dataclass(frozen=True)
class Route:
    """Guests on ``bridge`` are sent to the server at their network's ``gateway``."""

    bridge: str
    gateway: str


@dataclass(frozen=True)
class ServerFiles:
    directory: Path

    @property
    def pid(self) -> Path:
        return self.directory / "server.pid"

    @property
    def log(self) -> Path:
        return self.directory / "server.log"


@dataclass(frozen=True)
class DesiredMetadata:
    routes: tuple[Route, ...]
    port: int
    argv: tuple[str, ...]
    env: tuple[tuple[str, str], ...]
    files: ServerFiles


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


def desired(
    routes: tuple[Route, ...],
    settings: Settings,
    state_dir: Path,
    env: dict[str, str],
    netns: str | None,
) -> DesiredMetadata:
    files = ServerFiles(state_dir / "metadata")
    argv = (
        sys.executable,
        "-m",
        "core.metadata",
        "--listen",
        f"0.0.0.0:{settings.metadata_port}",
        "--pid-file",
        str(files.pid),
        "--dhcp-domain",
        settings.dhcp_domain,
        "--physical-mtu",
        str(settings.physical_mtu),
        *(("--netns", netns) if netns else ()),
    )
    return DesiredMetadata(routes, settings.metadata_port, argv, tuple(sorted(env.items())), files)


# -- what the host has ---------------------------------------------------------------


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
    answers = len(servers) == 1 and _listens(netns, port)
    if not table_wanted and not _table_marker(files).exists():
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
    answers = len(servers) == 1 and _listens(netns, want.port)
    nft_found = shutil.which(nft_binary) is not None
    if not want.routes and not _table_marker(want.files).exists():
        return ObservedMetadata(False, False, servers=servers, answers=answers)
    source = lookup() if nft_found and _table_marker(want.files).exists() else None
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
    pid = _pid_in(want.files.pid)
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


def _table_marker(files: ServerFiles) -> Path:
    return files.directory / "nat-table"


# -- operations ----------------------------------------------------------------------


@dataclass(frozen=True)
class CreateMetadataTable(Operation):
    replace: bool
    files: ServerFiles

    def describe(self) -> str:
        verb = "recreate" if self.replace else "create"
        return f"{verb} nftables table {FAMILY} {TABLE} (DNAT of {ADDRESS}:80 for guests)"


@dataclass(frozen=True)
class DeleteMetadataTable(Operation):
    files: ServerFiles

    def describe(self) -> str:
        return f"delete nftables table {FAMILY} {TABLE} (no network here serves metadata)"


@dataclass(frozen=True)
class SetMetadataRoute(Operation):
    bridge: str
    gateway: str
    port: int
    # The bridge has a route already, to another place: it goes before the new one.
    replaces: bool = False

    def describe(self) -> str:
        return f"DNAT {ADDRESS}:80 from guests on {self.bridge} to {self.gateway}:{self.port}"


@dataclass(frozen=True)
class DeleteMetadataRoute(Operation):
    bridge: str

    def describe(self) -> str:
        return f"no metadata DNAT for {self.bridge} any more"


@dataclass(frozen=True)
class SetMetadataPort(Operation):
    port: int
    add: bool

    def describe(self) -> str:
        if self.add:
            return f"let only DNATed connections reach the metadata port {self.port}"
        return f"stop guarding port {self.port} (no longer the metadata port)"


@dataclass(frozen=True)
class StartMetadataServer(Operation):
    argv: tuple[str, ...]
    env: tuple[tuple[str, str], ...]
    files: ServerFiles
    port: int
    reason: str = ""

    def describe(self) -> str:
        why = f" ({self.reason})" if self.reason else ""
        return f"start metadata server on port {self.port}{why}"


@dataclass(frozen=True)
class StopMetadataServer(Operation):
    pids: tuple[int, ...]
    reason: str

    def describe(self) -> str:
        return f"stop metadata server (pid {', '.join(map(str, self.pids))}: {self.reason})"


TABLE_OPS = (
    CreateMetadataTable,
    DeleteMetadataTable,
    SetMetadataRoute,
    DeleteMetadataRoute,
    SetMetadataPort,
)
METADATA_OPS = (*TABLE_OPS, StartMetadataServer, StopMetadataServer)


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


def stop(ops: Sequence[Operation]) -> None:
    """Stop the servers the plan stops (first: a new one needs the port)."""
    processes.terminate(
        [pid for op in ops if isinstance(op, StopMetadataServer) for pid in op.pids]
    )


def apply(ops: Sequence[Operation], nft_binary: str, netns: str | None) -> list[str]:
    """The DNAT table's changes, then the servers' starts; returns why what failed did
    (the kernel work stays: the next apply tries the server again)."""
    apply_table(ops, nft_binary, netns)
    return wait_all(launch(ops), netns)


def apply_table(ops: Sequence[Operation], nft_binary: str, netns: str | None) -> None:
    """The DNAT table's changes as one nft batch."""
    text = table_text(ops)
    if not text:
        return
    result = namespace.run(netns, [nft_binary, "-f", "-"], stdin=text)
    if result.returncode != 0:
        lines = [line for line in result.stderr.splitlines() if line.strip()]
        raise HostError(f"nft: metadata DNAT: {lines[0] if lines else 'failed'}")
    for op in ops:
        if isinstance(op, CreateMetadataTable):
            op.files.directory.mkdir(parents=True, exist_ok=True)
            _table_marker(op.files).touch()
        elif isinstance(op, DeleteMetadataTable):
            _table_marker(op.files).unlink(missing_ok=True)


def launch(ops: Sequence[Operation]) -> list[Launch]:
    """Start the servers the plan starts, without waiting for them: a server takes
    longer to start (a Python process and its imports) than the rest of an apply, which
    goes on meanwhile; :func:`wait_all` then waits for each to listen."""
    launched = []
    for op in ops:
        if isinstance(op, StartMetadataServer):
            try:
                launched.append(Launch(op, spawn(op)))
            except HostError as exc:
                launched.append(Launch(op, None, str(exc)))
    return launched


def wait_all(launched: Sequence[Launch], netns: str | None) -> list[str]:
    """Wait for each launched server to listen; why each that did not."""
    failures = []
    for started in launched:
        try:
            started.wait(netns)
        except HostError as exc:
            failures.append(str(exc))
    return failures


@dataclass
class Launch:
    """A server started and not yet known to listen (``child`` None: it could not be
    started, for ``error``)."""

    op: StartMetadataServer
    child: subprocess.Popen[bytes] | None
    error: str = ""

    def wait(self, netns: str | None) -> int:
        if self.child is None:
            raise HostError(self.error)
        return _wait_listening(self.op, self.child, netns)

    def abandon(self) -> None:
        """Stop it: the apply failed before it could be told to serve."""
        if self.child is not None and self.child.poll() is None:
            self.child.kill()
            self.child.wait()


def table_text(ops: Sequence[Operation]) -> str:
    """The nft script for the plan's table operations (empty: none)."""
    lines: list[str] = []
    table = f"{FAMILY} {TABLE}"
    for op in ops:
        if isinstance(op, DeleteMetadataTable):
            lines.append(f"delete table {table}")
        elif isinstance(op, CreateMetadataTable):
            if op.replace:
                lines.append(f"delete table {table}")
            lines += [
                f"add table {table}",
                f"add map {table} {ROUTES} {{ type ifname : ipv4_addr . inet_service; }}",
                f"add set {table} {PORTS} {{ type inet_service; }}",
                f"add chain {table} prerouting "
                "{ type nat hook prerouting priority -100; policy accept; }",
                f"add rule {table} prerouting ip daddr {ADDRESS} tcp dport 80 "
                f"dnat ip to iifname map @{ROUTES}",
                f"add chain {table} input {{ type filter hook input priority 0; policy accept; }}",
                # Only connections the DNAT made, or the host's own, reach the server.
                f"add rule {table} input tcp dport @{PORTS} ct status dnat accept",
                f'add rule {table} input tcp dport @{PORTS} iifname != "lo" drop',
            ]
        elif isinstance(op, SetMetadataRoute):
            if op.replaces:  # 'add' would keep an element's old value
                lines.append(f'delete element {table} {ROUTES} {{ "{op.bridge}" }}')
            lines.append(
                f'add element {table} {ROUTES} {{ "{op.bridge}" : {op.gateway} . {op.port} }}'
            )
        elif isinstance(op, DeleteMetadataRoute):
            lines.append(f'delete element {table} {ROUTES} {{ "{op.bridge}" }}')
        elif isinstance(op, SetMetadataPort):
            verb = "add" if op.add else "delete"
            lines.append(f"{verb} element {table} {PORTS} {{ {op.port} }}")
    return "".join(line + "\n" for line in lines)


def start(op: StartMetadataServer, netns: str | None) -> int:
    """Start the server for ``netns`` and wait (at most START_TIMEOUT) until it listens."""
    return _wait_listening(op, spawn(op), netns)


def spawn(op: StartMetadataServer) -> subprocess.Popen[bytes]:
    """Start the server, not waiting for it."""
    op.files.directory.mkdir(parents=True, exist_ok=True)
    op.files.pid.unlink(missing_ok=True)
    log = open(op.files.log, "ab")  # noqa: SIM115 - handed to the child
    try:
        # Started here, not in ``netns``: it opens its listening socket there itself.
        return subprocess.Popen(
            list(op.argv),
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=log,
            env=dict(op.env),
            start_new_session=True,
        )
    except OSError as exc:
        raise HostError(f"metadata server: cannot start {op.argv[0]}: {exc.strerror}") from None
    finally:
        log.close()


def _wait_listening(
    op: StartMetadataServer, child: subprocess.Popen[bytes], netns: str | None
) -> int:
    """Wait (at most START_TIMEOUT from now) until ``child`` listens; its pid."""
    # The server writes its pid file once it listens: the port is then its own, not
    # another program's.
    if processes.wait_until(
        lambda: _pid_in(op.files.pid) == child.pid and _listens(netns, op.port),
        START_TIMEOUT,
        watch=child.pid,
    ):
        return child.pid
    if child.poll() is not None:
        raise HostError(
            f"metadata server exited at start (status {child.returncode}): "
            f"{_last_line(op.files.log)}"
        )
    child.kill()
    child.wait()
    raise HostError(
        f"metadata server did not listen on port {op.port} within {START_TIMEOUT:.0f} s: "
        f"{_last_line(op.files.log)}"
    )


def _listens(netns: str | None, port: int) -> bool:
    with namespace.entered(netns):
        probe = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    try:
        probe.settimeout(0.5)
        probe.connect(("127.0.0.1", port))
        return True
    except OSError:
        return False
    finally:
        probe.close()


def _pid_in(path: Path) -> int | None:
    try:
        return int(path.read_text().strip())
    except (OSError, ValueError):
        return None


def _last_line(path: Path) -> str:
    try:
        lines = [line for line in path.read_text(errors="replace").splitlines() if line.strip()]
    except OSError:
        return "no log"
    return lines[-1].strip() if lines else "no output"
