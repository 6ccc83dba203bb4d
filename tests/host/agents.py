"""Three network hosts as namespaces joined by VXLAN, each with its own `netcon agent`."""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from core.config import Settings, load_settings
from core.service import NetconService
from tests.host.conftest import Lab, in_ns

HOSTS = ("h1", "h2", "h3")
PUBLIC_CLIENT = "203.0.113.1"
# Short, so a dead host is seen dead within seconds; the agents heartbeat every 1.5 s.
HOST_DOWN_TIME = 6


class Cloud:
    def __init__(self, lab: Lab, url: str, tmp_path: Path) -> None:
        self.lab = lab
        self.url = url
        self.tmp_path = tmp_path
        self.switch = lab.netns("sw")
        in_ns(self.switch, "ip", "link", "add", "sw0", "type", "bridge")
        in_ns(self.switch, "ip", "link", "set", "sw0", "up")
        self.public = lab.netns("pub")
        in_ns(self.public, "ip", "link", "add", "pb0", "type", "bridge")
        in_ns(self.public, "ip", "link", "set", "pb0", "up")
        in_ns(self.public, "ip", "addr", "add", f"{PUBLIC_CLIENT}/24", "dev", "pb0")
        self.ns: dict[str, str] = {}
        self.agents: dict[str, subprocess.Popen[Any]] = {}
        self.urls: dict[str, str] = {}
        for index, name in enumerate(HOSTS, start=1):
            ns = lab.netns(name)
            self.ns[name] = ns
            lab.veth(ns, "und0", self.switch, f"u{index}")
            in_ns(self.switch, "ip", "link", "set", f"u{index}", "master", "sw0")
            lab.address(ns, "und0", f"192.168.90.{index}/24")
            lab.veth(ns, "pub0", self.public, f"p{index}")
            in_ns(self.public, "ip", "link", "set", f"p{index}", "master", "pb0")
            lab.address(ns, "pub0", f"203.0.113.{10 + index}/24")
            config = tmp_path / f"config-{name}" / "netcon"
            config.mkdir(parents=True)
            (config / "netcon.toml").write_text(
                f'host = "{name}"\n'
                f'state_dir = "{lab.state_dir / name}"\n'
                'public_interface = "pub0"\n'
                'vlan_interface = "und0"\n'
                'segmentation = "vxlan"\n'
                f'vpn_ip = "203.0.113.{10 + index}"\n'
                f"host_down_time = {HOST_DOWN_TIME}\n"
                "agent_resync = 20\n"
            )
            self.urls[name] = url

    def settings(self, name: str) -> Settings:
        return load_settings(paths=[self.tmp_path / f"config-{name}" / "netcon" / "netcon.toml"])

    def service(self, name: str = "h1") -> NetconService:
        return NetconService(self.url, self.settings(name), actor="admin")

    def start(self, name: str) -> subprocess.Popen[Any]:
        log = (self.tmp_path / f"agent-{name}.log").open("a")
        env = {
            **os.environ,
            "XDG_CONFIG_HOME": str(self.tmp_path / f"config-{name}"),
            "NETCON_DATABASE_URL": self.urls[name],
        }
        process = subprocess.Popen(
            [sys.executable, "-m", "tui", "agent", "--netns", self.ns[name]],
            stdout=log,
            stderr=log,
            env=env,
        )
        self.lab.processes.append(process)
        self.agents[name] = process
        return process

    def kill(self, name: str) -> None:
        process = self.agents.pop(name)
        process.send_signal(signal.SIGKILL)
        process.wait(10)

    def log(self, name: str) -> str:
        return (self.tmp_path / f"agent-{name}.log").read_text()

    def wait(self, what: str, check: Callable[[], bool], timeout: float = 40.0) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if check():
                return
            time.sleep(0.2)
        logs = "\n".join(f"--- {n}\n{self.log(n)[-1500:]}" for n in self.agents)
        raise AssertionError(f"timed out waiting for {what}\n{logs}")

    def wait_alive(self, names: tuple[str, ...] = HOSTS) -> None:
        service = self.service()

        def alive() -> bool:
            known = {h.name: h for h in service.list_hosts()}
            return all(n in known and known[n].alive for n in names)

        self.wait(f"{', '.join(names)} alive", alive)

    def wait_applied(self, names: tuple[str, ...] = HOSTS) -> None:
        service = self.service()

        def applied() -> bool:
            known = {h.name: h for h in service.list_hosts()}
            return all(n not in known or known[n].pending == 0 for n in names)

        self.wait(f"{', '.join(names)} to apply every change", applied)

    def links(self, name: str) -> dict[str, list[str]]:
        """Each link of host ``name`` with its IPv4 addresses."""
        found: dict[str, list[str]] = {}
        out = in_ns(self.ns[name], "ip", "-o", "-4", "addr", "show").stdout
        for line in in_ns(self.ns[name], "ip", "-o", "link", "show").stdout.splitlines():
            found[line.split(":")[1].strip().split("@")[0]] = []
        for line in out.splitlines():
            parts = line.split()
            found.setdefault(parts[1], []).append(parts[3])
        return found


class Proxy:
    """A TCP relay between one agent and the database, which a test can cut: a network
    partition of that host alone."""

    def __init__(self, target_port: int) -> None:
        self.target = ("127.0.0.1", target_port)
        self.listener = socket.socket()
        self.listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.listener.bind(("127.0.0.1", 0))
        self.listener.listen(64)
        self.port = self.listener.getsockname()[1]
        self.open = True
        self.sockets: list[socket.socket] = []
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while True:
            try:
                client, _ = self.listener.accept()
            except OSError:
                return
            if not self.open:
                client.close()
                continue
            server = socket.create_connection(self.target)
            self.sockets += [client, server]
            for a, b in ((client, server), (server, client)):
                threading.Thread(target=self._pipe, args=(a, b), daemon=True).start()

    def _pipe(self, source: socket.socket, sink: socket.socket) -> None:
        try:
            while data := source.recv(65536):
                sink.sendall(data)
        except OSError:
            pass
        finally:
            for sock in (source, sink):
                with contextlib.suppress(OSError):
                    sock.shutdown(socket.SHUT_RDWR)

    def cut(self) -> None:
        self.open = False
        for sock in self.sockets:
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)

    def close(self) -> None:
        self.cut()
        self.listener.close()
