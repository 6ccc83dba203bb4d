"""One dnsmasq per DHCP network: its files in the state directory and its process.

The hosts file holds exactly the network's allocated addresses (MAC, hostname, IP),
the names file the same instances as DNS names (forward and reverse, leased or not);
dnsmasq is told about new versions with SIGHUP, which re-reads both, and the options
file. Its ``--dhcp-script`` reports lease events to ``netcon dhcp-event``. It starts
from a lease file the apply writes just before, from the database (``--dhcp-leasefile``,
which it then keeps itself), so a restarted dnsmasq ACKs a renewing guest at once, and
restoring leases starts no process at all.

Each dnsmasq serves its own bridge only: ``--interface`` with no ``--listen-address``
makes it bind its DHCP socket to that device (SO_BINDTODEVICE), so a unicast renewal
to one network's gateway is never taken by another network's dnsmasq on the same host.
"""

from __future__ import annotations

import bisect
import contextlib
import ipaddress
import os
import shlex
import shutil
import signal
import stat
import sys
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

from core.errors import HostError
from core.linux import dnsmasq6, namespace
from core.linux import processes as processes_
from core.linux.desired import DesiredNetwork

# How long one dnsmasq may take to say it serves (or why it does not).
START_TIMEOUT = 10.0
PID_FILE_GRACE = 2.0
STOP_TIMEOUT = 5.0
# dnsmasq processes starting at once: enough to keep every core busy, and few enough
# that their starts do not crowd the kernel. Each lists every interface of the namespace
# as it starts (a netlink dump under the RTNL lock): with 64 in flight among a thousand
# bridges, starts took twice as long as 16, and some failed ("failed to find list of
# interfaces: Cannot allocate memory").
IN_FLIGHT = 8 * (os.cpu_count() or 1)


@dataclass(frozen=True)
class DhcpFiles:
    directory: Path
    bridge: str

    @property
    def hosts(self) -> Path:
        return self.directory / f"{self.bridge}.conf"

    @property
    def names(self) -> Path:
        return self.directory / f"{self.bridge}.names"

    @property
    def opts(self) -> Path:
        return self.directory / f"{self.bridge}.opts"

    @property
    def pid(self) -> Path:
        return self.directory / f"{self.bridge}.pid"

    @property
    def leases(self) -> Path:
        return self.directory / f"{self.bridge}.leases"

    @property
    def leased(self) -> Path:
        """``MAC IP`` of each lease the database is known to hold (see script_text)."""
        return self.directory / f"{self.bridge}.leased"

    @property
    def leases6(self) -> Path:
        """The DHCPv6 leases this dnsmasq gave (see dnsmasq6.py), by its lease script."""
        return self.directory / f"{self.bridge}.leases6"

    @property
    def log(self) -> Path:
        return self.directory / f"{self.bridge}.log"

    @property
    def script(self) -> Path:
        return self.directory / "dhcp-script"


@dataclass(frozen=True)
class DnsmasqState:
    bridge: str
    pid: int | None  # None: not running
    argv: tuple[str, ...]
    hosts_text: str | None
    opts_text: str | None
    # True: found by its command line, not named by its pid file (which was lost).
    adopted: bool = False
    # Other dnsmasq processes of this bridge: duplicates, or left in an old namespace.
    strays: tuple[int, ...] = ()
    names_text: str | None = None
    # The DHCPv6 leases it gave, as its lease script wrote them down.
    leases6: tuple[dnsmasq6.Lease6, ...] = ()


@dataclass(frozen=True)
class Start:
    """One dnsmasq to start: its files, command line and environment."""

    files: DhcpFiles
    argv: tuple[str, ...]
    env: dict[str, str]


def hosts_text(network: DesiredNetwork) -> str:
    assert network.dhcp is not None
    return dnsmasq6.hosts_file(network.ipv6, network.dhcp)


def names_text(network: DesiredNetwork) -> str:
    assert network.dhcp is not None
    return dnsmasq6.names_file(network.ipv6, network.dhcp)


def keyed_text(have: str, addresses: frozenset[str], wanted: str, *, names: bool) -> str:
    """``have``, a hosts (or, with ``names``, a names) file as an apply wrote it (in
    address order), with the lines of ``addresses`` replaced by ``wanted``'s: what the
    whole file would be, found without the rest of the network's hosts. Raises
    ValueError for a line that is none of ours."""

    def address_of(line: str) -> str:
        return line.split(" ", 1)[0] if names else line.rstrip("\n").rsplit(",", 1)[-1]

    def key(line: str) -> int:
        return int(ipaddress.IPv4Address(address_of(line)))

    lines = have.splitlines(keepends=True)
    for address in addresses:
        at = bisect.bisect_left(lines, int(ipaddress.IPv4Address(address)), key=key)
        while at < len(lines) and address_of(lines[at]) == address:
            del lines[at]
    for line in wanted.splitlines(keepends=True):
        bisect.insort(lines, line, key=key)
    return "".join(lines)


def leases(network: DesiredNetwork) -> tuple[tuple[str, str, str], ...]:
    """The addresses the database has leased on ``network``, as (MAC, IP, hostname): what
    a dnsmasq starting for it should know it handed out."""
    assert network.dhcp is not None
    dhcp = network.dhcp
    found = [(h.mac, h.address, h.hostname) for h in dhcp.hosts if h.leased]
    found += [(held.mac, held.address, "*") for held in dhcp.held_leases]
    return tuple(found)


def leases_text(leased: Sequence[tuple[str, str, str]], lease_time: int, now: float) -> str:
    """dnsmasq's lease-file format (``EXPIRY MAC IP HOSTNAME CLIENT-ID``), each lease given
    a whole lease time from ``now``: the database knows that it is leased, not since when,
    so a guest keeps its address until it renews or, gone, its lease runs out."""
    expiry = int(now) + lease_time
    return "".join(f"{expiry} {mac} {address} {name} *\n" for mac, address, name in leased)


def opts_text(network: DesiredNetwork) -> str:
    assert network.dhcp is not None and network.gateway is not None
    tag = f"net{network.id}"
    lines = [f"tag:{tag},option:router,{network.gateway}"]
    if network.dhcp.dns:
        lines.append(f"tag:{tag},option:dns-server,{','.join(network.dhcp.dns)}")
    if network.dhcp.mtu is not None:
        lines.append(f"tag:{tag},option:mtu,{network.dhcp.mtu}")
    lines += dnsmasq6.options(network)
    return "\n".join(lines) + "\n"


def argv(binary: str, network: DesiredNetwork, files: DhcpFiles) -> tuple[str, ...]:
    assert network.dhcp is not None and network.gateway is not None
    dhcp = network.dhcp
    size = 1 << (32 - network.prefixlen)
    base = f"{files.directory}/{files.bridge}"
    return (
        binary,
        "--strict-order",
        "--bind-interfaces",
        "--conf-file=",
        f"--pid-file={base}.pid",
        f"--dhcp-optsfile={base}.opts",
        # Its own bridge only (no --listen-address, which would turn off the device
        # binding of the DHCP socket), and not the loopback --interface brings along.
        f"--interface={network.bridge}",
        "--except-interface=lo",
        f"--dhcp-range=set:net{network.id},{dhcp.dhcp_start},static,{dhcp.netmask},"
        f"{dhcp.lease_time}s",
        f"--dhcp-lease-max={size}",
        f"--dhcp-hostsfile={base}.conf",
        f"--dhcp-script={files.directory}/dhcp-script",
        # The only DHCP server of its subnet: a request for an address it has no lease
        # of is answered (ACK or NAK), never ignored.
        "--dhcp-authoritative",
        # On a multi-host network, only for this host's instances: every other client
        # on the segment is its own host's to answer, so it is ignored, never NAKed.
        *(("--dhcp-ignore=tag:!known",) if dhcp.serving_host is not None else ()),
        "--no-hosts",
        f"--addn-hosts={base}.names",
        # The leases the database holds, written by the apply that starts it: read at
        # start, where "--leasefile-ro" would run the lease script ("init") for them.
        f"--dhcp-leasefile={base}.leases",
        # Names in the network's domain are answered here or not at all (NXDOMAIN);
        # single-label names never leave; the rest goes to the upstream resolvers.
        "--no-resolv",
        f"--domain={dhcp.domain}",
        f"--local=/{dhcp.domain}/",
        # So are the reverse names of its own subnet: an unknown one is NXDOMAIN here,
        # never a question to the upstream resolvers about the cloud's private addresses.
        f"--local=/{'/'.join(reverse_zones(network.cidr))}/",
        "--domain-needed",
        *(f"--server={server}" for server in dhcp.upstream),
        *dnsmasq6.argv(network),
        f"--log-facility={base}.log",
        "--log-dhcp",
    )


def reverse_zones(cidr: str) -> list[str]:
    """The in-addr.arpa domains that together hold exactly the reverse names of ``cidr``:
    one for a /8, /16 or /24; a zone is whole octets, so a subnet off an octet boundary
    takes one per block of the next boundary (16 /24 zones for a /20, 64 single names
    for a /26), and never a name outside it."""
    subnet = ipaddress.IPv4Network(cidr)
    octets = max(1, -(-subnet.prefixlen // 8))
    zones = []
    for part in subnet.subnets(new_prefix=octets * 8):
        labels = str(part.network_address).split(".")[:octets]
        zones.append(".".join(reversed(labels)) + ".in-addr.arpa")
    return zones


def script_text(python: str = sys.executable) -> str:
    # dnsmasq runs this as root with its own environment, which carries the database
    # URL, the import path and NETWORK_ID. What the database already knows is answered by
    # the shell; only news starts a Python process:
    # - "init" is not asked for: dnsmasq reads the lease file the apply wrote. A dnsmasq
    #   started by hand with --leasefile-ro gets that file printed (NETCON_LEASES), or
    #   without it the database's leases.
    # - "old" comes twice for every lease at start (DNSMASQ_DATA_MISSING=1: the database
    #   told it those), once as dnsmasq re-runs the script for every lease it read and
    #   once as it finds the lease's interface. Answered by the shell, but each is a
    #   process: this is what restoring leases costs a start (on two cores, 200 dnsmasq
    #   with a lease each start in some 0.8 s, against 0.58 s with no lease to restore).
    #   It also comes, for a dnsmasq with --leasefile-ro, at every renewal: 50 guests
    #   renewing at once after an evacuation would start 50 Python processes. A lease the
    #   database is known to hold (in the ".leased" file, from the apply and from each
    #   event recorded since) is left at that; any other (a lost "add" when the database
    #   was away) is recorded, as it was.
    # - An event the database cannot be told now (a dnsmasq in a namespace, whose loopback
    #   is not the host's, with PostgreSQL on the host's) is written to the spool file
    #   (SPOOL), which the host's next apply records before it reads the database.
    # - A DHCPv6 lease changes nothing in the database, which has held the address since
    #   launch; it is written down beside the leases (address, client DUID, IAID, server
    #   DUID, MAC), so that the apply can release it when its address changes hands.
    return (
        "#!/bin/sh\n"
        'leased="${NETCON_LEASES%.leases}.leased"\n'
        'if [ -n "$DNSMASQ_IAID" ]; then\n'
        '  [ -n "$NETCON_LEASES" ] || exit 0\n'
        '  v6="${NETCON_LEASES%.leases}.leases6"\n'
        '  case "$1" in add|old|del)\n'
        '    { [ -r "$v6" ] && awk -v a="$3" -v c="$2" \'!($1 == a && $2 == c)\' "$v6"\n'
        '      [ "$1" = del ] ||\n'
        '        echo "$3 $2 $DNSMASQ_IAID $DNSMASQ_SERVER_DUID ${DNSMASQ_MAC:--}"\n'
        '    } > "$v6.new" && mv -f "$v6.new" "$v6" ;;\n'
        "  esac\n"
        "  exit 0\n"
        "fi\n"
        'case "$1" in\n'
        '  init) [ -n "$NETCON_LEASES" ] && [ -r "$NETCON_LEASES" ] &&\n'
        '        exec cat "$NETCON_LEASES" ;;\n'
        '  old) [ "$DNSMASQ_DATA_MISSING" = 1 ] && exit 0\n'
        '       [ -n "$NETCON_LEASES" ] && grep -qxF "$2 $3" "$leased" 2>/dev/null && exit 0 ;;\n'
        "esac\n"
        f'if ! {shlex.quote(python)} -m core.cli dhcp-event "$@"; then\n'
        '  case "$1" in add|old|del) [ -n "$NETCON_LEASES" ] &&\n'
        f'    echo "$1 $2 $3" >> "${{NETCON_LEASES%/*}}/{SPOOL}" ;; esac\n'
        "  exit 1\n"
        "fi\n"
        'case "$1" in add|old) [ -n "$NETCON_LEASES" ] && echo "$2 $3" >> "$leased" ;; esac\n'
        "exit 0\n"
    )


# Lease events the lease script could not record (``ACTION MAC IP`` a line), in the
# DHCP directory; an apply takes them (take_spooled) and records them.
SPOOL = "lease-events"


def take_spooled(directory: Path) -> list[str]:
    """The lease events spooled in ``directory`` since the last look, oldest first; the
    file is renamed away first, so an event appended meanwhile waits for the next look.
    Lines taken by a look that then failed to record them come first."""
    spool = directory / SPOOL
    taken = directory / f"{SPOOL}.taking"
    if not spool.exists() and not taken.exists():
        return []
    fresh = directory / f"{SPOOL}.fresh"
    with contextlib.suppress(FileNotFoundError):
        # A rename: the script appends to a new file from then on, and loses nothing.
        spool.rename(fresh)
        with taken.open("a") as pending:
            pending.write(fresh.read_text())
        fresh.unlink()
    try:
        return [line for line in taken.read_text().splitlines() if line.strip()]
    except FileNotFoundError:
        return []


def forget_spooled(directory: Path) -> None:
    """The events take_spooled gave are recorded: they go."""
    (directory / f"{SPOOL}.taking").unlink(missing_ok=True)


def find_binary(binary: str) -> str | None:
    return shutil.which(binary)


def observe(
    directory: Path,
    netns: str | None,
    bridges: Iterable[str] | None = None,
    expected: Iterable[str] = (),
) -> dict[str, DnsmasqState]:
    """The dnsmasq of every bridge this state directory knows (or of ``bridges`` only).

    Every dnsmasq of ours is also looked for in /proc, by its command line (which names
    its pid file here) and its namespace, so that one whose pid file was lost is
    adopted, and one that should not run (a duplicate, or one left in a namespace since
    made again) is stopped. For a few named bridges that look is made only when a pid
    file does not name a live dnsmasq of ours where one runs or should (``expected``).
    """
    base = str(directory)
    prefix = f"--pid-file={base}/"
    names = set(known_bridges(directory)) if bridges is None else set(bridges)
    named = {bridge: _pid_in(f"{base}/{bridge}.pid") for bridge in names}
    found: dict[str, list[processes_.Process]] | None = None
    argv_by_pid: dict[int, tuple[str, ...]] = {}
    if bridges is None:
        found = _by_bridge(processes_.find("dnsmasq", prefix, netns), prefix)
    else:
        for bridge, pid in named.items():
            seen = processes_.argv_of(pid) if pid is not None else None
            if pid is not None and seen is not None and _is_ours(seen, f"{base}/{bridge}.pid"):
                argv_by_pid[pid] = seen
            else:
                named[bridge] = None
        present = set(known_bridges(directory)) | set(expected)
        if any(pid is None and bridge in present for bridge, pid in named.items()):
            everything = _by_bridge(processes_.find("dnsmasq", prefix, netns), prefix)
            found = {b: everything[b] for b in names if b in everything}
    if found is not None:
        names |= set(found)
    states = {}
    for bridge in sorted(names):
        pid = named.get(bridge)
        argv_now: tuple[str, ...] = ()
        adopted = False
        mine = found.get(bridge, []) if found is not None else []
        if found is not None:
            # What /proc says wins: the pid file's process must be ours and here.
            serving = [p for p in mine if p.here]
            if pid is not None and not any(p.pid == pid for p in serving):
                pid = None
            if pid is None and serving:
                pid, adopted = serving[0].pid, True
            argv_now = next((p.argv for p in mine if p.pid == pid), ())
        elif pid is not None:
            argv_now = argv_by_pid[pid]
        states[bridge] = DnsmasqState(
            bridge=bridge,
            pid=pid,
            argv=argv_now,
            hosts_text=_read(f"{base}/{bridge}.conf"),
            opts_text=_read(f"{base}/{bridge}.opts"),
            names_text=_read(f"{base}/{bridge}.names"),
            leases6=dnsmasq6.parse_leases(_read(f"{base}/{bridge}.leases6")),
            adopted=adopted,
            strays=tuple(p.pid for p in mine if p.pid != pid),
        )
    return states


def _by_bridge(
    found: Iterable[processes_.Process], prefix: str
) -> dict[str, list[processes_.Process]]:
    by_bridge: dict[str, list[processes_.Process]] = {}
    for process in found:
        bridge = _bridge_of(process.argv, prefix)
        if bridge is not None:
            by_bridge.setdefault(bridge, []).append(process)
    return by_bridge


def known_bridges(directory: Path) -> list[str]:
    """Bridges this state directory has dnsmasq files for (ours to stop and clean)."""
    try:
        entries = os.listdir(directory)
    except OSError:
        return []
    return sorted({name.rsplit(".", 1)[0] for name in entries if name.endswith((".pid", ".conf"))})


def _bridge_of(argv_: tuple[str, ...], prefix: str) -> str | None:
    for word in argv_:
        if word.startswith(prefix) and word.endswith(".pid"):
            bridge = word[len(prefix) : -len(".pid")]
            return bridge if bridge and "/" not in bridge else None
    return None


def _read(path: str) -> str | None:
    try:
        fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
    except OSError:
        return None
    try:
        chunks = []
        while chunk := os.read(fd, 1 << 20):
            chunks.append(chunk)
    except OSError:
        return None
    finally:
        os.close(fd)
    return b"".join(chunks).decode(errors="replace")


def _pid_in(pid_file: str) -> int | None:
    text = _read(pid_file)
    return int(text) if text and text.strip().isdigit() else None


def _is_ours(argv_now: tuple[str, ...], pid_file: str) -> bool:
    # A recycled pid belongs to someone else: only our dnsmasq names our pid file.
    return (
        bool(argv_now) and argv_now[0].endswith("dnsmasq") and f"--pid-file={pid_file}" in argv_now
    )


def _running_pid(pid_file: str) -> int | None:
    """The live dnsmasq of ours the pid file names."""
    pid = _pid_in(pid_file)
    if pid is None:
        return None
    argv_now = processes_.argv_of(pid)
    return pid if argv_now is not None and _is_ours(argv_now, pid_file) else None


def check_reachable(directory: Path) -> None:
    """dnsmasq re-reads its files as user nobody: every directory above them must let it in."""
    directory.mkdir(parents=True, exist_ok=True)
    directory.chmod(0o755)
    for folder in [directory, *directory.parents]:
        if not folder.stat().st_mode & stat.S_IXOTH:
            raise HostError(
                f"dnsmasq reads its hosts files as user nobody, who cannot enter {folder}; "
                "make it searchable (chmod o+x) or choose another state_dir"
            )


def write_atomically(path: Path, text: str, mode: int = 0o644) -> None:
    # A reader (dnsmasq on SIGHUP) sees the old file or the new one, never half of one.
    temporary = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, mode)
    except FileNotFoundError:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, mode)
    try:
        os.write(fd, text.encode())
        os.fchmod(fd, mode)
    finally:
        os.close(fd)
    os.replace(temporary, path)


def write_directly(path: Path, text: str, mode: int = 0o644) -> None:
    """Write in place: for the files of a dnsmasq that is not running, which nothing
    reads until it starts (a rename per file costs the file system a journal entry)."""
    flags = os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_CLOEXEC
    try:
        fd = os.open(path, flags, mode)
    except FileNotFoundError:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(path, flags, mode)
    try:
        os.write(fd, text.encode())
        os.fchmod(fd, mode)
    finally:
        os.close(fd)


# dnsmasq lists the namespace's interfaces over netlink as it starts; with hundreds of
# bridges and many dnsmasq starting at once the kernel now and then answers that dump
# with ENOMEM, and dnsmasq gives up. Such a start is tried again.
TRANSIENT = "failed to find list of interfaces: Cannot allocate memory"
START_TRIES = 3


def start_all(netns: str | None, starts: Sequence[Start]) -> dict[str, str]:
    """Start every dnsmasq without waiting for each in turn; returns why each one that
    failed did, by bridge.

    dnsmasq's first process exits once the daemon it forked is serving (or has failed,
    saying why on stderr). Up to IN_FLIGHT of them run at once, the next one starting
    as soon as one is done: that bounds the open pipes and keeps the cores busy without
    drowning them. Each has START_TIMEOUT from its own start.
    """
    failed: dict[str, str] = {}
    for item in starts:
        item.files.pid.unlink(missing_ok=True)
    queue = list(starts)
    queue.reverse()
    tries: dict[str, int] = {}
    running: list[_Launch] = []
    served: list[Start] = []
    with namespace.entered(netns):
        while queue or running:
            while queue and len(running) < IN_FLIGHT:
                item = queue.pop()
                try:
                    running.append(_Launch.spawn(item))
                except OSError as exc:
                    failed[item.files.bridge] = f"cannot run {item.argv[0]}: {exc.strerror}"
            still = []
            now = time.monotonic()
            for launch in running:
                status = launch.poll()
                if status is None and now - launch.started > START_TIMEOUT:
                    launch.kill()
                    failed[launch.item.files.bridge] = f"did not start within {START_TIMEOUT:.0f} s"
                elif status is None:
                    still.append(launch)
                elif status == 0:
                    launch.close()
                    served.append(launch.item)
                else:
                    complaint = launch.complaint(status)
                    bridge = launch.item.files.bridge
                    tries[bridge] = tries.get(bridge, 0) + 1
                    if TRANSIENT in complaint and tries[bridge] < START_TRIES:
                        queue.insert(0, launch.item)  # again, after the others
                    else:
                        failed[bridge] = complaint
            running = still
            if running:
                time.sleep(0.002)

    # They said they serve; their pid files follow at once.
    def written() -> bool:
        nonlocal served
        served = [w for w in served if _running_pid(str(w.files.pid)) is None]
        return not served

    processes_.wait_until(written, PID_FILE_GRACE, interval=0.005)
    for item in served:
        failed[item.files.bridge] = "started but wrote no pid file"
    return failed


class _Launch:
    """The first process of one dnsmasq, started with posix_spawn (the cheapest way for a
    large process to start a small one), its stderr on a pipe."""

    def __init__(self, item: Start, pid: int, errors: int) -> None:
        self.item = item
        self.pid = pid
        self.errors = errors
        self.started = time.monotonic()

    @classmethod
    def spawn(cls, item: Start) -> _Launch:
        read, write = os.pipe2(os.O_CLOEXEC)
        try:
            pid = os.posix_spawn(
                item.argv[0],
                item.argv,
                item.env,
                file_actions=[
                    (os.POSIX_SPAWN_OPEN, 0, os.devnull, os.O_RDONLY, 0),
                    (os.POSIX_SPAWN_OPEN, 1, os.devnull, os.O_WRONLY, 0),
                    (os.POSIX_SPAWN_DUP2, write, 2),
                ],
            )
        except BaseException:
            os.close(read)
            raise
        finally:
            os.close(write)
        return cls(item, pid, read)

    def poll(self) -> int | None:
        """Its exit status once it has exited (negative: killed by that signal)."""
        pid, status = os.waitpid(self.pid, os.WNOHANG)
        if pid == 0:
            return None
        return os.waitstatus_to_exitcode(status)

    def complaint(self, status: int) -> str:
        # What the daemon it forked inherited is closed by now (dnsmasq closes its
        # stdio): everything is there to read without waiting.
        os.set_blocking(self.errors, False)
        chunks = []
        with contextlib.suppress(BlockingIOError):
            while chunk := os.read(self.errors, 65536):
                chunks.append(chunk)
        self.close()
        message = " ".join(b"".join(chunks).decode(errors="replace").split())
        return message or f"exit status {status}"

    def kill(self) -> None:
        with contextlib.suppress(ProcessLookupError):
            os.kill(self.pid, signal.SIGKILL)
        os.waitpid(self.pid, 0)
        self.close()

    def close(self) -> None:
        os.close(self.errors)


def failure_message(failed: dict[str, str]) -> str:
    """One line naming every dnsmasq that failed, grouped by why."""
    if len(failed) == 1:
        ((bridge, why),) = failed.items()
        return f"dnsmasq for {bridge} failed to start: {why} (the next apply tries again)"
    reasons: dict[str, list[str]] = {}
    for bridge, why in sorted(failed.items()):
        reasons.setdefault(why, []).append(bridge)
    parts = "; ".join(f"{', '.join(bridges)}: {why}" for why, bridges in reasons.items())
    return f"{len(failed)} dnsmasq failed to start: {parts} (the next apply tries again)"


def adopt(files: DhcpFiles, pid: int) -> None:
    """Write down a running dnsmasq that lost its pid file, as if it had written it."""
    write_atomically(files.pid, f"{pid}\n")


def reload(pid: int) -> None:
    try:
        os.kill(pid, signal.SIGHUP)
    except ProcessLookupError:
        raise HostError(f"dnsmasq pid {pid} vanished before it could reload") from None


def release_leases(
    netns: str | None, program: str, bridge: str, leases: Sequence[tuple[str, str]]
) -> None:
    """Ask dnsmasq to drop leases (a DHCPRELEASE on the client's behalf).

    dnsmasq then runs the lease script with ``del``, which frees the address in the
    database at once instead of after the lease time.
    """
    for address, mac in leases:
        result = namespace.run(netns, [program, bridge, address, mac])
        if result.returncode != 0:
            message = " ".join(result.stderr.split()) or f"exit status {result.returncode}"
            raise HostError(f"dhcp_release {address} on {bridge}: {message}")


def stop_processes(pids: Iterable[int]) -> None:
    """SIGTERM every one, then wait for all of them (SIGKILL after STOP_TIMEOUT)."""
    processes_.terminate(pids, STOP_TIMEOUT)


def delete_files(files: DhcpFiles) -> None:
    for path in (
        files.pid,
        files.hosts,
        files.opts,
        files.names,
        files.leases,
        files.leased,
        files.leases6,
    ):
        path.unlink(missing_ok=True)


def stop(pid: int | None, files: DhcpFiles, *, remove_files: bool = True) -> None:
    stop_processes([pid] if pid is not None else [])
    if remove_files:
        delete_files(files)
