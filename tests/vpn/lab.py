"""Throwaway namespaces for VPN tests: a network host, an instance and a remote client.

remote (eth0 192.0.2.2/30) --veth-- (pub0 192.0.2.1/30) network host
                                        br<vlan> 10.77.0.1/24
                                          └─ vi0 --veth-- (eth0 10.77.0.5/24) instance,
                                                            HTTP server on :8000
"""

from __future__ import annotations

import os
import secrets
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

from pyroute2 import IPRoute, netns

PUBLIC_HOST = "192.0.2.1"
PUBLIC_REMOTE = "192.0.2.2"
INSTANCE_ADDRESS = "10.77.0.5"
HTTP_PORT = 8000
WAIT = 30.0


def _up(ipr: IPRoute, ifname: str, address: str | None = None, prefix: int = 24) -> None:
    index = ipr.link_lookup(ifname=ifname)[0]
    if address:
        ipr.addr("add", index=index, address=address, prefixlen=prefix)
    ipr.link("set", index=index, state="up")


def wait_for(predicate, what: str, timeout: float = WAIT) -> None:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.1)
    raise AssertionError(f"gave up waiting for {what}")


def pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    try:
        # A zombie waiting for init to reap it has an empty command line.
        return Path(f"/proc/{pid}/cmdline").read_bytes() != b""
    except OSError:
        return False


def processes_using(path: Path) -> list[int]:
    """Live processes whose command line names a file under ``path``."""
    found = []
    needle = str(path).encode()
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit() or int(entry.name) == os.getpid():
            continue
        try:
            if needle in (entry / "cmdline").read_bytes():
                found.append(int(entry.name))
        except OSError:
            continue
    return found


def kill_pid(pid: int) -> None:
    try:
        os.kill(pid, signal.SIGTERM)
    except ProcessLookupError:
        return
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline and pid_alive(pid):
        time.sleep(0.05)
    if pid_alive(pid):
        os.kill(pid, signal.SIGKILL)


@dataclass
class Client:
    name: str
    pid: int
    log: Path

    def text(self) -> str:
        try:
            return self.log.read_text(errors="replace")
        except OSError:
            return ""

    def connected(self) -> bool:
        return "Initialization Sequence Completed" in self.text()


@dataclass
class Lab:
    tag: str
    workdir: Path
    vlan: int
    bridge: str
    gateway: str = "10.77.0.1"
    cidr: str = "10.77.0.0/24"
    pids: list[int] = field(default_factory=list)

    @property
    def host(self) -> str:
        return f"nc-vh-{self.tag}"

    @property
    def instance(self) -> str:
        return f"nc-vi-{self.tag}"

    @property
    def remote(self) -> str:
        return f"nc-vr-{self.tag}"

    def build(self) -> None:
        for name in (self.host, self.instance, self.remote):
            netns.create(name)
        with IPRoute(netns=self.host) as ipr:
            ipr.link("add", ifname=self.bridge, kind="bridge")
            _up(ipr, self.bridge, self.gateway)
            ipr.link(
                "add",
                ifname="vi0",
                kind="veth",
                peer={"ifname": "eth0", "net_ns_fd": self.instance},
            )
            index = ipr.link_lookup(ifname="vi0")[0]
            ipr.link("set", index=index, master=ipr.link_lookup(ifname=self.bridge)[0])
            _up(ipr, "vi0")
            ipr.link(
                "add", ifname="pub0", kind="veth", peer={"ifname": "eth0", "net_ns_fd": self.remote}
            )
            _up(ipr, "pub0", PUBLIC_HOST, 30)
            _up(ipr, "lo")
        with IPRoute(netns=self.instance) as ipr:
            _up(ipr, "eth0", INSTANCE_ADDRESS)
            _up(ipr, "lo")
        with IPRoute(netns=self.remote) as ipr:
            _up(ipr, "eth0", PUBLIC_REMOTE, 30)
            _up(ipr, "lo")
        server = subprocess.Popen(
            ["ip", "netns", "exec", self.instance, sys.executable, "-m", "http.server",
             str(HTTP_PORT), "--bind", INSTANCE_ADDRESS, "--directory", str(self.workdir)],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )  # fmt: skip
        self.pids.append(server.pid)
        (self.workdir / "hello.txt").write_text("hello from the instance\n")

    def teardown(self) -> None:
        for pid in self.pids:
            kill_pid(pid)
        for name in (self.host, self.instance, self.remote):
            if name in netns.listnetns():
                netns.remove(name)

    def start_client(self, name: str, ovpn: str) -> Client:
        config = self.workdir / f"{name}.ovpn"
        config.write_text(ovpn)
        config.chmod(0o600)
        pid_file = self.workdir / f"{name}.pid"
        log = self.workdir / f"{name}.log"
        subprocess.run(
            ["ip", "netns", "exec", self.remote, "openvpn", "--daemon", f"nc-client-{name}",
             "--writepid", str(pid_file), "--log", str(log), "--config", str(config)],
            check=True,
        )  # fmt: skip
        wait_for(pid_file.exists, f"pid file of client {name}")
        wait_for(lambda: pid_file.read_text().strip() != "", f"pid of client {name}")
        pid = int(pid_file.read_text())
        self.pids.append(pid)
        return Client(name, pid, log)

    def stop_client(self, client: Client) -> None:
        kill_pid(client.pid)

    def http_get_from_remote(self, path: str = "/hello.txt") -> str:
        code = (
            "import urllib.request,sys;"
            f"sys.stdout.write(urllib.request.urlopen('http://{INSTANCE_ADDRESS}:{HTTP_PORT}{path}',"
            "timeout=5).read().decode())"
        )
        result = subprocess.run(
            ["ip", "netns", "exec", self.remote, sys.executable, "-c", code],
            capture_output=True, text=True, timeout=30,
        )  # fmt: skip
        if result.returncode != 0:
            raise AssertionError(f"HTTP from remote failed: {result.stderr.strip()[-300:]}")
        return result.stdout


def new_tag() -> str:
    return secrets.token_hex(2)
