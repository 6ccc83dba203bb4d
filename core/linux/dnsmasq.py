"""One dnsmasq per DHCP network: its files in the state directory and its process.

The hosts file holds exactly the network's allocated addresses (MAC, hostname, IP);
dnsmasq is told about a new version with SIGHUP, and its ``--dhcp-script`` reports
lease events to ``netcon dhcp-event``.
"""

from __future__ import annotations

import contextlib
import ipaddress
import os
import shlex
import shutil
import signal
import stat
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from core.errors import HostError
from core.linux import namespace
from core.linux.desired import DesiredNetwork

START_TIMEOUT = 10.0


@dataclass(frozen=True)
class DhcpFiles:
    directory: Path
    bridge: str

    @property
    def hosts(self) -> Path:
        return self.directory / f"{self.bridge}.conf"

    @property
    def opts(self) -> Path:
        return self.directory / f"{self.bridge}.opts"

    @property
    def pid(self) -> Path:
        return self.directory / f"{self.bridge}.pid"

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


def hosts_text(network: DesiredNetwork) -> str:
    assert network.dhcp is not None
    return network.dhcp.hosts_file


def opts_text(network: DesiredNetwork) -> str:
    assert network.dhcp is not None and network.gateway is not None
    tag = f"net{network.id}"
    lines = [f"tag:{tag},option:router,{network.gateway}"]
    if network.dhcp.dns:
        lines.append(f"tag:{tag},option:dns-server,{','.join(network.dhcp.dns)}")
    return "\n".join(lines) + "\n"


def argv(binary: str, network: DesiredNetwork, files: DhcpFiles) -> tuple[str, ...]:
    assert network.dhcp is not None and network.gateway is not None
    dhcp = network.dhcp
    size = ipaddress.IPv4Network(network.cidr).num_addresses
    return (
        binary,
        "--strict-order",
        "--bind-interfaces",
        "--conf-file=",
        f"--pid-file={files.pid}",
        f"--dhcp-optsfile={files.opts}",
        f"--listen-address={network.gateway}",
        "--except-interface=lo",
        f"--dhcp-range=set:net{network.id},{dhcp.dhcp_start},static,{dhcp.netmask},"
        f"{dhcp.lease_time}s",
        f"--dhcp-lease-max={size}",
        f"--dhcp-hostsfile={files.hosts}",
        f"--dhcp-script={files.script}",
        "--no-hosts",
        "--leasefile-ro",
        "--no-resolv",
        f"--domain={dhcp.domain}",
        f"--log-facility={files.log}",
        "--log-dhcp",
    )


def script_text(python: str = sys.executable) -> str:
    # dnsmasq runs this as root with its own environment, which carries the database
    # URL and the import path; "init" is answered with an empty lease list.
    return (
        "#!/bin/sh\n"
        '[ "$1" = init ] && exit 0\n'
        f'exec {shlex.quote(python)} -m core.cli dhcp-event "$@"\n'
    )


def find_binary(binary: str) -> str | None:
    return shutil.which(binary)


def observe(files: DhcpFiles) -> DnsmasqState:
    pid = _running_pid(files)
    argv_now: tuple[str, ...] = ()
    if pid is not None:
        try:
            raw = Path(f"/proc/{pid}/cmdline").read_bytes()
            argv_now = tuple(a.decode() for a in raw.split(b"\0") if a)
        except OSError:
            pid = None
    return DnsmasqState(
        bridge=files.bridge,
        pid=pid,
        argv=argv_now,
        hosts_text=_read(files.hosts),
        opts_text=_read(files.opts),
    )


def known_bridges(directory: Path) -> list[str]:
    """Bridges this state directory has dnsmasq files for (ours to stop and clean)."""
    if not directory.is_dir():
        return []
    return sorted(p.name.removesuffix(".pid") for p in directory.glob("*.pid"))


def _read(path: Path) -> str | None:
    try:
        return path.read_text()
    except OSError:
        return None


def _running_pid(files: DhcpFiles) -> int | None:
    text = _read(files.pid)
    if not text or not text.strip().isdigit():
        return None
    pid = int(text.strip())
    try:
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return None
    # A recycled pid belongs to someone else: only our dnsmasq names our pid file.
    if f"--pid-file={files.pid}".encode() not in cmdline:
        return None
    return pid


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


def start(netns: str | None, argv_: tuple[str, ...], env: dict[str, str], files: DhcpFiles) -> int:
    files.pid.unlink(missing_ok=True)
    process = namespace.spawn(netns, argv_, env)
    try:
        _, err = process.communicate(timeout=START_TIMEOUT)
    except Exception:
        process.kill()
        raise HostError(
            f"dnsmasq for {files.bridge} did not start within {START_TIMEOUT:.0f} s"
        ) from None
    if process.returncode != 0:
        message = (
            " ".join(err.decode(errors="replace").split()) or f"exit status {process.returncode}"
        )
        raise HostError(f"dnsmasq for {files.bridge} failed to start: {message}")
    deadline = time.monotonic() + START_TIMEOUT
    while time.monotonic() < deadline:
        pid = _running_pid(files)
        if pid is not None:
            return pid
        time.sleep(0.01)
    raise HostError(f"dnsmasq for {files.bridge} started but wrote no pid file")


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


def stop(pid: int | None, files: DhcpFiles, *, remove_files: bool = True) -> None:
    if pid is not None:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGTERM)
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline and Path(f"/proc/{pid}").exists():
            time.sleep(0.01)
    if remove_files:
        for path in (files.pid, files.hosts, files.opts):
            path.unlink(missing_ok=True)
