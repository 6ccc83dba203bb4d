"""The metadata service from where its users stand: guests that, given only DHCP, ask
http://169.254.169.254/ for themselves; a guest that claims another's address; a guest of
another project; a server that dies; the plan that starts, restarts and stops it."""

from __future__ import annotations

import ipaddress
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from core.linux import processes
from core.linux.metadata import observe, spec
from core.linux.metadata.operations import METADATA_OPS
from core.linux.scope import Scope
from tests.host.conftest import Lab, in_ns
from tests.host.scenario import NetworkHost, network_host

ED25519 = (
    "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIHs1t0bK3dyzX0dNf8XX3bE0m0qBq2rVqv3pQqk6t5cN admin@example"
)
USER_DATA = b"#cloud-config\nhostname: web1\nruncmd: [echo hello]\n"
BASE = f"http://{spec.ADDRESS}"
# What cloud-init reads at boot (EC2 and OpenStack data sources).
PATHS = (
    "/latest/meta-data/hostname",
    "/latest/meta-data/instance-id",
    "/latest/meta-data/local-ipv4",
    "/latest/meta-data/public-keys/0/openssh-key",
    "/latest/user-data",
    "/openstack/latest/meta_data.json",
    "/openstack/latest/network_data.json",
)
# One process in the guest fetches every path, as cloud-init does; optionally from a
# source address the guest has put on its interface (a spoofed one).
FETCH = r"""
import http.client, json, sys
paths, source, timeout = json.loads(sys.argv[1]), sys.argv[2] or None, float(sys.argv[3])
found = {}
for path in paths:
    try:
        conn = http.client.HTTPConnection("169.254.169.254", 80, timeout=timeout,
                                          source_address=(source, 0) if source else None)
        conn.request("GET", path)
        response = conn.getresponse()
        found[path] = [response.status, response.read().decode(errors="replace")]
    except OSError as exc:
        found[path] = [None, type(exc).__name__]
print(json.dumps(found))
"""


def fetch(
    ns: str, paths: tuple[str, ...] = PATHS, source: str = "", timeout: float = 3
) -> dict[str, list[object]]:
    result = in_ns(
        ns, sys.executable, "-c", FETCH, json.dumps(list(paths)), source, str(timeout), timeout=60
    )
    found: dict[str, list[object]] = json.loads(result.stdout)
    return found


def _host(lab: Lab, tmp_path: Path) -> NetworkHost:
    host = network_host(lab, tmp_path)
    host.service.create_project("alpha")
    host.service.create_project("beta")
    host.service.create_networks("10.93.0.0/24", 2, 128)
    host.service.add_key("alpha", "admin", ED25519)
    return host


def _guest(host: NetworkHost, name: str, project: str, **launch: object) -> tuple[str, str]:
    vm = host.service.launch_instance(project, name, **launch).addresses[0]  # type: ignore[arg-type]
    host.sync.sync()
    bridges = {n.cidr: n.bridge for n in host.service.list_networks()}
    ns = host.instance(name, vm.mac, bridges[vm.network])
    assert host.lab.dhcp_client(ns) == vm.address  # its only configuration: DHCP
    return ns, vm.address


def test_a_guest_given_only_dhcp_reads_its_own_metadata(lab: Lab, tmp_path: Path) -> None:
    host = _host(lab, tmp_path)
    ns, address = _guest(host, "web1", "alpha", key="admin", user_data=USER_DATA)
    plan = host.sync.plan()
    assert not plan, plan.describe()  # a second apply has nothing to do
    found = fetch(ns)
    assert found["/latest/meta-data/hostname"] == [200, "web1.novalocal"]
    assert found["/latest/meta-data/local-ipv4"] == [200, address]
    assert found["/latest/meta-data/public-keys/0/openssh-key"] == [200, ED25519 + "\n"]
    assert found["/latest/user-data"] == [200, USER_DATA.decode()]
    meta = json.loads(str(found["/openstack/latest/meta_data.json"][1]))
    assert (meta["name"], meta["project_id"], meta["public_keys"]) == (
        "web1",
        "alpha",
        {"admin": ED25519},
    )
    network = json.loads(str(found["/openstack/latest/network_data.json"][1]))
    assert network["networks"][0]["ip_address"] == address


def test_no_guest_reads_another_instances_metadata(lab: Lab, tmp_path: Path) -> None:
    host = _host(lab, tmp_path)
    web1_ns, web1 = _guest(host, "web1", "alpha", key="admin", user_data=USER_DATA)
    web2_ns, web2 = _guest(host, "web2", "alpha")
    other_ns, other = _guest(host, "intruder", "beta")
    # Networks never overlap in netcon, so another project's guest has another address.
    assert not _within(other, _cidr_of(host, web1))
    paths = ("/latest/meta-data/hostname", "/latest/user-data")
    # A spoofed request is never answered: one path tells that.
    stolen = ("/latest/user-data",)
    # Each asks with its own address and learns about itself only.
    assert fetch(web2_ns, paths)["/latest/meta-data/hostname"] == [200, "web2.novalocal"]
    theirs = fetch(other_ns, paths)
    assert theirs["/latest/meta-data/hostname"] == [200, "intruder.novalocal"]
    assert theirs["/latest/user-data"][0] == 404
    # A neighbour on the same network that takes web1's address is dropped at its port.
    in_ns(web2_ns, "ip", "addr", "add", f"{web1}/32", "dev", "eth0")
    spoofed = fetch(web2_ns, stolen, source=web1)
    assert all(status is None for status, _ in spoofed.values()), spoofed
    # So is a guest of another project's network claiming it.
    in_ns(other_ns, "ip", "addr", "add", f"{web1}/32", "dev", "eth0")
    spoofed = fetch(other_ns, stolen, source=web1)
    assert all(status is None for status, _ in spoofed.values()), spoofed
    # web1 itself still gets its own.
    assert fetch(web1_ns, paths)["/latest/user-data"] == [200, USER_DATA.decode()]
    # The real test of a source address: an instance that is not up (no one to reset a
    # spoofed connection), whose address a neighbour takes and answers ARP for.
    ghost = host.service.launch_instance("alpha", "ghost", user_data=b"ghost secrets\n")
    host.sync.sync()
    ghost_ip = ghost.addresses[0].address
    in_ns(web2_ns, "ip", "addr", "add", f"{ghost_ip}/32", "dev", "eth0")
    spoofed = fetch(web2_ns, stolen, source=ghost_ip)
    assert all(status is None for status, _ in spoofed.values()), spoofed
    # Anti-spoofing is what stops it: without the port filter the same request gets the
    # ghost's user data (so this test would see the hole), and the next apply closes it.
    in_ns(host.ns, "nft", "delete", "table", "bridge", "netcon")
    assert fetch(web2_ns, stolen, source=ghost_ip)["/latest/user-data"] == [200, "ghost secrets\n"]
    host.sync.sync()
    spoofed = fetch(web2_ns, stolen, source=ghost_ip)
    assert all(status is None for status, _ in spoofed.values()), spoofed
    # The server's port cannot be reached around the DNAT: not from a guest at its
    # gateway, not from the public side.
    gateway = next(n.gateway for n in host.service.list_networks() if _within(web2, n.cidr))
    direct = in_ns(
        web2_ns,
        sys.executable,
        "-c",
        f"import socket; socket.create_connection(('{gateway}', 8775), 2)",
        check=False,
    )
    assert direct.returncode != 0
    assert lab.fetch(host.public, "http://203.0.113.2:8775/latest/meta-data/hostname") is None


def _within(address: str, cidr: str) -> bool:
    return ipaddress.IPv4Address(address) in ipaddress.IPv4Network(cidr)


def _cidr_of(host: NetworkHost, address: str) -> str:
    return next(n.cidr for n in host.service.list_networks() if _within(address, n.cidr))


def test_the_apply_path_starts_restarts_and_stops_the_server(lab: Lab, tmp_path: Path) -> None:
    host = _host(lab, tmp_path)
    first = host.sync.plan()
    assert not any(isinstance(op, METADATA_OPS) for op in first.operations)
    vm = host.service.launch_instance("alpha", "web1").addresses[0]
    described = host.sync.sync().describe()
    assert "start metadata server on port 8775" in described
    bridge = next(n.bridge for n in host.service.list_networks() if n.cidr == vm.network)
    assert any(line.startswith(f"DNAT 169.254.169.254:80 from guests on {bridge} to ")
               for line in described)  # fmt: skip
    assert not host.sync.plan()
    ns = host.instance("web1", vm.mac, bridge)
    assert lab.dhcp_client(ns) == vm.address
    files = spec.ServerFiles(host.layer.state_dir / "metadata")
    (server,) = observe.find_servers(files, host.ns)
    # Killed: the next apply sees it gone and starts another, which answers.
    os.kill(server.pid, signal.SIGKILL)
    assert host.sync.plan().describe() == ["start metadata server on port 8775"]
    host.sync.sync()
    assert fetch(ns, ("/latest/meta-data/hostname",))["/latest/meta-data/hostname"] == [
        200,
        "web1.novalocal",
    ]
    # Its pid file lost, it is still found by its command line: nothing to do.
    files.pid.unlink()
    assert not host.sync.plan()


def _refuse(*_: object, **__: object) -> None:
    raise AssertionError("a scoped apply looked at everything")


def test_a_scoped_apply_of_a_new_network_starts_the_server(
    lab: Lab, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    host = network_host(lab, tmp_path)
    host.service.create_project("alpha")
    (network,) = host.service.create_networks("10.94.0.0/24", 1, 256)
    host.service.launch_instance("alpha", "web1")
    scope = Scope(frozenset({network.id}))
    described = host.sync.sync(scope=scope).describe()
    assert "start metadata server on port 8775" in described
    # Asked again, by key only: the server through its pid file, routes over nfnetlink.
    monkeypatch.setattr("core.linux.processes.find", _refuse)
    monkeypatch.setattr(observe, "observe", _refuse)
    assert not host.sync.sync(scope=scope)
    # A change that touches no network does not look for the server at all.
    assert not host.sync.plan(scope=Scope(security=True))


def test_the_server_and_its_dnat_go_with_the_last_network_served(lab: Lab, tmp_path: Path) -> None:
    host = _host(lab, tmp_path)
    host.service.launch_instance("alpha", "web1")
    host.sync.sync()
    files = spec.ServerFiles(host.layer.state_dir / "metadata")
    assert len(observe.find_servers(files, host.ns)) == 1
    host.service.terminate_instance("web1")
    for network in host.service.list_networks():
        host.service.delete_network(network.cidr)
    described = host.sync.sync().describe()
    assert any(line.startswith("stop metadata server") for line in described), described
    assert any("delete nftables table ip netcon_metadata" in line for line in described)
    assert observe.find_servers(files, host.ns) == ()
    listed = in_ns(host.ns, "nft", "list", "tables").stdout
    assert "netcon_metadata" not in listed
    assert not host.sync.plan()


def test_the_server_ends_when_its_namespace_is_deleted(lab: Lab, tmp_path: Path) -> None:
    """It runs outside the namespace it listens in: deleting the namespace (a rehearsal
    done with) must not leave it behind."""
    host = _host(lab, tmp_path)
    host.service.launch_instance("alpha", "web1")
    host.sync.sync()
    files = spec.ServerFiles(host.layer.state_dir / "metadata")
    (server,) = observe.find_servers(files, host.ns)
    host.layer.close()
    links = in_ns(host.ns, "ip", "-o", "link", "show").stdout.splitlines()
    for name in [line.split(":")[1].strip().split("@")[0] for line in links]:
        if name != "lo":
            in_ns(host.ns, "ip", "link", "del", name, check=False)
    subprocess.run(["ip", "netns", "del", host.ns], check=True)
    # (The test process started it: once it exits it stays a zombie, with no command
    # line, until reaped.)
    deadline = time.monotonic() + 10
    while processes.argv_of(server.pid) is not None and time.monotonic() < deadline:
        time.sleep(0.1)
    assert processes.argv_of(server.pid) is None
