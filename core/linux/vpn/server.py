"""One OpenVPN server process per project and namespace: start, probe, stop.

The project's PKI lives in ``<state_dir>/vpn/<project>/`` on the host itself and in
``<state_dir>/netns-<name>/vpn-ca/<project>/`` in a namespace: a rehearsal's server and
client configurations never share the real host's authority for a project of the same
name (a client made for one does not connect to the other). The running server's files
live per namespace, as the host
layer keeps its own (``<state_dir>/host/vpn/<project>/``, or ``netns-<name>`` instead of
``host``), so a rehearsal in a namespace never disturbs the real server:
``server.conf``, ``openvpn.pid``, ``openvpn.log``, ``mgmt.sock`` (the management
interface; a unix socket is reachable from any namespace) and ``run.json``, written
before the start, saying where the tap lives so that ``stop`` can find it again.
"""

from __future__ import annotations

import json
import os
import re
import socket
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from core.errors import HostError
from core.linux import processes
from core.linux.namespace import check_netns, entered
from core.linux.vpn import tap
from core.linux.vpn.files import private_dir, write_private
from core.linux.vpn.render import server_config
from core.linux.vpn.spec import VpnSpec

if TYPE_CHECKING:
    from core.linux.vpn.pki import ProjectPki

START_TIMEOUT = 15.0
STOP_TIMEOUT = 5.0
PROBE_TIMEOUT = 1.0
# sockaddr_un.sun_path is 108 bytes, including the terminating NUL.
MAX_SOCKET_PATH = 107


def vpn_root(state_dir: str | Path, namespace: str | None = None) -> Path:
    """Where the projects' certificate authorities of a namespace live (the host's
    where they always were)."""
    if namespace is None:
        return Path(state_dir) / "vpn"
    return Path(state_dir) / f"netns-{namespace}" / "vpn-ca"


def runtime_root(state_dir: str | Path, namespace: str | None) -> Path:
    # Named as the host layer names its per-namespace directories.
    return Path(state_dir) / (f"netns-{namespace}" if namespace else "host") / "vpn"


@dataclass(frozen=True)
class Running:
    """What ``run.json`` recorded about a server that was started."""

    project: str
    netns: str | None
    tap: str
    pid: int | None


class ServerFiles:
    def __init__(self, state_dir: str | Path, project: str, namespace: str | None = None) -> None:
        self.project = project
        self.namespace = namespace
        self.directory = runtime_root(state_dir, namespace) / project
        # Imported on use: the PKI's cryptography costs a host apply with no VPN 30 ms.
        from core.linux.vpn.pki import ProjectPki

        self.pki: ProjectPki = ProjectPki(vpn_root(state_dir, namespace) / project, project)

    @property
    def config(self) -> Path:
        return self.directory / "server.conf"

    @property
    def pid(self) -> Path:
        return self.directory / "openvpn.pid"

    @property
    def log(self) -> Path:
        return self.directory / "openvpn.log"

    @property
    def socket(self) -> Path:
        return self.directory / "mgmt.sock"

    @property
    def record(self) -> Path:
        return self.directory / "run.json"

    def render(self, spec: VpnSpec) -> str:
        return server_config(spec, self.pki, self.socket)

    def running(self) -> Running | None:
        try:
            data = json.loads(self.record.read_text())
        except (OSError, ValueError):
            return None
        return Running(
            project=self.project,
            netns=data.get("netns"),
            tap=str(data.get("tap", "")),
            pid=self.live_pid(),
        )

    @property
    def owner_file(self) -> Path:
        return self.pki.directory / "owner"

    def owned_by(self, owner: str) -> bool:
        try:
            return self.owner_file.read_text() == owner
        except FileNotFoundError:
            # Made by hand (tests, rehearsals): nobody to tell apart.
            return True

    def claim(self, owner: str) -> None:
        """Retire the directory if it holds the CA of an earlier project of this name."""
        if not owner:
            return
        ca_dir = self.pki.directory
        if ca_dir.exists() and not self.owned_by(owner):
            if self.live_pid() is not None:
                raise HostError(
                    f"a VPN server of an earlier project named {self.project} still runs"
                )
            stamp = time.strftime("%Y%m%dT%H%M%S")
            os.replace(ca_dir, ca_dir.with_name(f".retired-{self.project}-{stamp}"))
        private_dir(ca_dir)
        if not self.owner_file.exists():
            write_private(self.owner_file, owner)

    def live_pid(self) -> int | None:
        """The pid in the pid file if that process is still this project's OpenVPN."""
        try:
            pid = int(self.pid.read_text().strip())
        except (OSError, ValueError):
            return None
        return pid if self._is_ours(pid) else None

    def _is_ours(self, pid: int) -> bool:
        try:
            cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
        except OSError:
            return False
        # A recycled pid belongs to some other program: never signal that. A zombie
        # has an empty command line and is gone for our purposes.
        return cmdline[0].endswith(b"openvpn") and str(self.config).encode() in cmdline

    def processes(self) -> list[int]:
        """Every live OpenVPN started with this server's configuration file.

        The pid file is written a moment after the daemon forks (and is empty while
        being written), so start-up and clean-up look the processes up themselves.
        """
        pids = []
        for entry in Path("/proc").iterdir():
            if entry.name.isdigit() and self._is_ours(int(entry.name)):
                pids.append(int(entry.name))
        return pids

    def answers(self) -> bool:
        return management_state(self.socket) == "CONNECTED"

    def state(self) -> str:
        """up: the process answers; unresponsive: alive but silent; down: not running."""
        if self.live_pid() is None:
            return "down"
        return "up" if self.answers() else "unresponsive"


def management_state(path: Path, timeout: float = PROBE_TIMEOUT) -> str | None:
    """The server's state word from its management interface (``CONNECTED`` when
    serving), or None if nothing answers."""
    try:
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as client:
            client.settimeout(timeout)
            client.connect(str(path))
            # Only "state": OpenVPN drops the reply if "quit" arrives in the same read.
            client.sendall(b"state\r\n")
            received = b""
            while b"\r\nEND" not in received:
                chunk = client.recv(4096)
                if not chunk:
                    break
                received += chunk
    except OSError:
        return None
    for line in received.decode(errors="replace").splitlines():
        fields = line.split(",")
        if len(fields) > 1 and fields[0].isdigit():
            return fields[1]
    return None


_LOG_TIME = re.compile(r"^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d ")


def _last_log_line(files: ServerFiles) -> str:
    try:
        lines = [line for line in files.log.read_text(errors="replace").splitlines() if line]
    except OSError:
        return "no log"
    complaints = [
        _LOG_TIME.sub("", line)
        for line in lines
        if "Note:" not in line
        and any(word in line for word in ("error", "Error", "ERROR", "Cannot", "failed"))
    ]
    # OpenVPN's own first complaint names the cause; OpenSSL's lines before it are codes.
    for line in complaints:
        if not line.startswith("OpenSSL:"):
            return line
    if complaints:
        return complaints[0]
    return _LOG_TIME.sub("", lines[-1]) if lines else "empty log"


def start(files: ServerFiles, spec: VpnSpec) -> None:
    """Start the server in its namespace; on any failure leave nothing behind (no
    process, no tap)."""
    namespace = files.namespace
    if len(str(files.socket)) > MAX_SOCKET_PATH:
        raise HostError(f"state_dir is too long: {files.socket} exceeds {MAX_SOCKET_PATH} bytes")
    check_netns(namespace)
    if files.live_pid() is not None:
        raise HostError(f"the VPN of project {spec.project} is already running")
    tap.check_udp_port_free(namespace, spec.public_address, spec.public_port)
    files.claim(spec.owner)
    files.pki.ensure_server()
    private_dir(files.directory)
    for stale in (files.pid, files.socket):
        stale.unlink(missing_ok=True)
    write_private(files.config, files.render(spec))
    write_private(
        files.record, json.dumps({"netns": namespace, "tap": spec.tap, "bridge": spec.bridge})
    )
    made_tap = False
    try:
        tap.ensure_tap(namespace, spec.tap, spec.bridge)
        made_tap = True
        _launch(files, namespace)
        _wait_until_up(files, spec)
    except BaseException:
        _kill(files)
        if made_tap:
            tap.remove_tap(namespace, spec.tap)
        files.record.unlink(missing_ok=True)
        raise


def _launch(files: ServerFiles, namespace: str | None) -> None:
    command = [
        "openvpn",
        "--daemon",
        f"netcon-vpn-{files.project}",
        "--writepid",
        str(files.pid),
        "--log",
        str(files.log),
        "--config",
        str(files.config),
    ]
    try:
        # OpenVPN inherits the namespace of the thread that starts it.
        with entered(namespace):
            result = subprocess.run(
                command, capture_output=True, text=True, timeout=START_TIMEOUT, check=False
            )
    except FileNotFoundError:
        raise HostError("openvpn is not installed (Debian package openvpn)") from None
    except subprocess.TimeoutExpired:
        raise HostError(f"openvpn for project {files.project} did not start") from None
    # The log file has the process's complaint even when it gave up before daemonising.
    if result.returncode != 0:
        raise HostError(
            f"openvpn for project {files.project} failed to start: {_last_log_line(files)}"
        )
    files.log.chmod(0o600)


def _wait_until_up(files: ServerFiles, spec: VpnSpec) -> None:
    # The daemon forked before _launch returned: no process left means it died.
    if processes.wait_until(
        lambda: files.answers() and files.live_pid() is not None,
        START_TIMEOUT,
        running=lambda: bool(files.processes()),
    ):
        return
    raise HostError(
        f"openvpn for project {spec.project} on {spec.endpoint} did not come up: "
        f"{_last_log_line(files)}"
    )


def _kill(files: ServerFiles) -> None:
    processes.terminate(files.processes(), STOP_TIMEOUT)


def stop(files: ServerFiles) -> None:
    """Stop the server and take its tap out of the bridge; the PKI stays."""
    record = files.running()
    _kill(files)
    if record is not None and record.tap:
        tap.remove_tap(record.netns, record.tap)
    for leftover in (files.pid, files.socket, files.record):
        leftover.unlink(missing_ok=True)


def running_servers(state_dir: str | Path, namespace: str | None) -> dict[str, list[int]]:
    """OpenVPN servers running with a configuration of this namespace's, by project:
    found by their command line, so that one that lost its pid file or its run record
    is still found (and stopped before a new one would fail on its port)."""
    root = runtime_root(state_dir, namespace)
    if not root.is_dir():
        return {}
    found: dict[str, list[int]] = {}
    for process in processes.find("openvpn", f"{root}/", namespace):
        words = list(process.argv)
        if "--config" not in words[:-1]:
            continue
        config = Path(words[words.index("--config") + 1])
        if config.parent.parent == root:
            found.setdefault(config.parent.name, []).append(process.pid)
    return found


def started_projects(state_dir: str | Path, namespace: str | None) -> list[str]:
    """Projects with a server that netcon started in ``namespace`` and has not stopped
    (running or not)."""
    root = runtime_root(state_dir, namespace)
    if not root.is_dir():
        return []
    return sorted(p.parent.name for p in root.glob("*/run.json"))
