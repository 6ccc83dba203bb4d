"""Namespaces, veths and processes for the host tests; each test removes its own.

The tests run as root in network namespaces they create under unique names
(``nc-<purpose>-<random>``); traffic stays between those namespaces. Interfaces are
deleted before their namespace, because deleting a namespace full of interfaces
stalls netlink for everyone.
"""

from __future__ import annotations

import contextlib
import os
import secrets
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from core.config import load_settings
from core.linux import processes
from core.linux.metadata.spec import PROGRAMS as METADATA_PROGRAMS
from core.service import NetconService
from core.service.hostsync import install_auto_apply

NOT_ROOT = "host tests create network namespaces and need root (CAP_SYS_ADMIN, CAP_NET_ADMIN)"
MISSING = [
    tool
    for tool in ("ip", "nft", "dnsmasq", "udhcpc")
    if subprocess.run(
        ["sh", "-c", f"command -v {tool}"], capture_output=True, check=False
    ).returncode
    != 0
]


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "no_tools: needs none of the host programs (mock kernel)")


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    here = Path(__file__).parent
    for item in items:
        if here not in Path(str(item.fspath)).parents:
            continue
        item.add_marker(pytest.mark.host)
        if os.geteuid() != 0:
            item.add_marker(pytest.mark.skip(reason=NOT_ROOT))
        elif MISSING and "no_tools" not in item.keywords:
            item.add_marker(
                pytest.mark.skip(
                    reason=f"missing programs: {', '.join(MISSING)} (Debian: "
                    "iproute2 nftables dnsmasq-base busybox-static udhcpc)"
                )
            )


def sh(*argv: str, check: bool = True, timeout: float = 30) -> subprocess.CompletedProcess[str]:
    result = subprocess.run(
        list(argv), capture_output=True, text=True, timeout=timeout, check=False
    )
    if check and result.returncode != 0:
        raise AssertionError(f"{' '.join(argv)} failed: {result.stderr.strip()}")
    return result


def in_ns(
    ns: str, *argv: str, check: bool = True, timeout: float = 30
) -> subprocess.CompletedProcess[str]:
    return sh("ip", "netns", "exec", ns, *argv, check=check, timeout=timeout)


class Lab:
    """The namespaces and processes one test made, removed in teardown."""

    def __init__(self, tmp_path: Path) -> None:
        self.tmp_path = tmp_path
        self.tag = secrets.token_hex(2)
        self.namespaces: list[str] = []
        self.processes: list[subprocess.Popen[Any]] = []
        # dnsmasq drops root for user nobody, which cannot enter pytest's 0700 tmp_path.
        self.state_dir = Path(tempfile.mkdtemp(prefix="nc-state-"))
        self.state_dir.chmod(0o755)

    def netns(self, purpose: str) -> str:
        name = f"nc-{purpose}-{self.tag}"
        sh("ip", "netns", "add", name)
        self.namespaces.append(name)
        in_ns(name, "ip", "link", "set", "lo", "up")
        return name

    def veth(
        self, ns_a: str, name_a: str, ns_b: str, name_b: str, *, mac_a: str | None = None
    ) -> None:
        sh(
            "ip",
            "link",
            "add",
            name_a,
            "netns",
            ns_a,
            "type",
            "veth",
            "peer",
            "name",
            name_b,
            "netns",
            ns_b,
        )
        if mac_a:
            in_ns(ns_a, "ip", "link", "set", name_a, "address", mac_a)
        in_ns(ns_a, "ip", "link", "set", name_a, "up")
        in_ns(ns_b, "ip", "link", "set", name_b, "up")

    def plug(
        self, host_ns: str, port: str, bridge: str, guest_ns: str, mac: str, *, hairpin: bool = True
    ) -> None:
        """An instance's port as a compute side plugs it: a veth whose host end joins the
        bridge at the bridge's MTU, in hairpin mode (as nova-compute set it; ``hairpin``
        False: a compute side that does not); the guest end is eth0 with ``mac``."""
        self.veth(guest_ns, "eth0", host_ns, port, mac_a=mac)
        mtu = in_ns(host_ns, "cat", f"/sys/class/net/{bridge}/mtu").stdout.strip()
        in_ns(host_ns, "ip", "link", "set", port, "mtu", mtu, "master", bridge)
        if hairpin:
            in_ns(host_ns, "ip", "link", "set", port, "type", "bridge_slave", "hairpin", "on")

    def address(self, ns: str, ifname: str, cidr: str) -> None:
        in_ns(ns, "ip", "addr", "add", cidr, "dev", ifname)

    def start(self, ns: str, *argv: str) -> subprocess.Popen[Any]:
        process = subprocess.Popen(
            ["ip", "netns", "exec", ns, *argv],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        self.processes.append(process)
        return process

    def echo_server(self, ns: str, address: str, port: int = 8080) -> None:
        """An HTTP server that answers every GET with the address the request came from."""
        program = (
            "import http.server, sys\n"
            "class Echo(http.server.BaseHTTPRequestHandler):\n"
            "    def do_GET(self):\n"
            "        body = self.client_address[0].encode()\n"
            "        self.send_response(200)\n"
            "        self.send_header('Content-Length', str(len(body)))\n"
            "        self.end_headers()\n"
            "        self.wfile.write(body)\n"
            "    def log_message(self, *args):\n"
            "        pass\n"
            f"http.server.HTTPServer(('{address}', {port}), Echo).serve_forever()\n"
        )
        self.start(ns, sys.executable, "-c", program)
        self.wait_listening(ns, port)

    def wait_listening(self, ns: str, port: int, seconds: float = 15) -> None:
        """Until a TCP server in ``ns`` listens on ``port``: a connection made while its
        interpreter starts would be refused, and a fast run would take that for a broken
        path."""
        deadline = time.monotonic() + seconds
        while not in_ns(ns, "ss", "-Hltn", f"sport = :{port}", check=False).stdout.strip():
            assert time.monotonic() < deadline, f"no server listens on port {port} in {ns}"
            time.sleep(0.05)

    def fetch(self, ns: str, url: str) -> str | None:
        """GET ``url`` from inside ``ns``: the body, or None when it cannot connect."""
        result = in_ns(
            ns,
            sys.executable,
            "-c",
            "import sys, urllib.request\n"
            f"print(urllib.request.urlopen('{url}', timeout=3).read().decode())",
            check=False,
            timeout=20,
        )
        if result.returncode != 0 and os.environ.get("NC_DEBUG"):
            print("FETCH", ns, url, result.stderr[-500:])
            subprocess.run(["sh", "-c", os.environ["NC_DEBUG"].replace("NS", ns)])
        return result.stdout.strip() if result.returncode == 0 else None

    def dhcp_client(self, ns: str, ifname: str = "eth0") -> str | None:
        """Run busybox udhcpc once; the address it was given, or None."""
        from tests.host.guests import lease

        given = lease(self, ns, ifname)
        return given["ip"] if given else None

    def teardown(self) -> None:
        for process in self.processes:
            if process.poll() is None:
                process.terminate()
                try:
                    process.wait(5)
                except subprocess.TimeoutExpired:
                    process.kill()
        # Daemons the host layer started for this test, found by their command line (which
        # names this test's state directory), pid file or not.
        for program in ("dnsmasq", "openvpn", *sorted(METADATA_PROGRAMS)):
            for process in processes.find(program, f"{self.state_dir}/", None):
                with contextlib.suppress(ProcessLookupError):
                    os.kill(process.pid, signal.SIGTERM)
        for name in reversed(self.namespaces):
            links = in_ns(name, "ip", "-o", "link", "show", check=False).stdout.splitlines()
            for line in links:
                ifname = line.split(":")[1].strip().split("@")[0]
                if ifname != "lo":
                    in_ns(name, "ip", "link", "del", ifname, check=False)
            sh("ip", "netns", "del", name, check=False)
        shutil.rmtree(self.state_dir, ignore_errors=True)


@pytest.fixture
def lab(tmp_path: Path) -> Iterator[Lab]:
    current = Lab(tmp_path)
    try:
        yield current
    finally:
        current.teardown()


def make_service(lab: Lab, db_url: str | None = None, **settings: Any) -> NetconService:
    values: dict[str, Any] = {
        "host": "nethost",
        "state_dir": str(lab.state_dir),
        "public_interface": "pub0",
        "vlan_interface": "und0",
        "segmentation": "vxlan",
        "dhcp_lease_time": 120,
    }
    values.update(settings)
    service = NetconService(
        db_url or "sqlite:///" + str(lab.tmp_path / "n.db"),
        load_settings(paths=[], **values),
        actor="tester",
    )
    # As a command's context does: changes reach the host at once with auto_apply.
    install_auto_apply(service)
    return service
