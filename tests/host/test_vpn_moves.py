"""A project VPN from where its users stand, when its network changes host: a client on
the public side connects to the address of the network's host, the network is evacuated
to another host, a new client configuration connects to that host's address and reaches
the project's instance, and the configuration made before is reported out of date.
Three hosts as namespaces joined by a VXLAN underlay, a real PostgreSQL, real OpenVPN,
one `netcon agent` each doing every apply.
"""

from __future__ import annotations

import ipaddress
import shutil
from pathlib import Path

import pytest

from core.linux.vpn.server import ServerFiles
from tests.host.agents import HOST_DOWN_TIME, HOSTS, Cloud
from tests.host.conftest import Lab, in_ns
from tests.host.guests import lease

pytestmark = [
    pytest.mark.postgres,
    pytest.mark.skipif(shutil.which("openvpn") is None, reason="openvpn is not installed"),
]

CIDR = "10.56.0.0/24"
PORT = 11980
CLIENT = "203.0.113.50"


@pytest.fixture
def cloud(lab: Lab, pg_url: str, tmp_path: Path) -> Cloud:
    built = Cloud(lab, pg_url, tmp_path)
    for name in HOSTS:
        built.start(name)
    built.wait_alive()
    return built


class VpnClient:
    """OpenVPN as a project member runs it, in a namespace of its own on the public side."""

    def __init__(self, cloud: Cloud, name: str) -> None:
        self.cloud = cloud
        self.name = name
        self.ns = cloud.lab.netns(f"vpn{name}")
        cloud.lab.veth(self.ns, "eth0", cloud.public, f"c{name}"[:15])
        in_ns(cloud.public, "ip", "link", "set", f"c{name}"[:15], "master", "pb0")
        cloud.lab.address(self.ns, "eth0", f"{CLIENT}/24")

    def connect(self, ovpn: str, attempt: str) -> str:
        """Start the client with ``ovpn``; the address the server gave its tap."""
        config = self.cloud.tmp_path / f"{self.name}-{attempt}.ovpn"
        config.write_text(ovpn)
        config.chmod(0o600)
        log = self.cloud.tmp_path / f"{self.name}-{attempt}.log"
        self.process = self.cloud.lab.start(
            self.ns, "openvpn", "--config", str(config), "--log", str(log)
        )
        self.cloud.wait(
            f"{self.name}'s tunnel",
            lambda: log.exists() and "Initialization Sequence Completed" in log.read_text(),
        )
        out = in_ns(self.ns, "ip", "-o", "-4", "addr", "show", "dev", "tap0").stdout.split()
        return out[3].split("/")[0]

    def disconnect(self) -> None:
        self.process.terminate()
        self.process.wait(10)


def _served(cloud: Cloud, host: str) -> ServerFiles:
    return ServerFiles(cloud.settings(host).state_dir, "zeta", cloud.ns[host])


def test_a_vpn_follows_its_network_to_the_host_it_is_evacuated_to(cloud: Cloud) -> None:
    admin = cloud.service("h3")
    admin.create_networks(CIDR, 1, 256, 160, PORT)
    admin.create_project("zeta")
    admin.add_security_group_rule("zeta", "default", "tcp", 8080, 8080)
    vm = admin.launch_instance("zeta", "z1", host="h3").addresses[0]
    admin.modify_network(CIDR, host="h1")
    assert admin.run_vpn("zeta") == ["VPN of project zeta is wanted on host h1"]
    cloud.wait("zeta's VPN answering on h1", _served(cloud, "h1").answers)
    cloud.wait_applied()
    guest = cloud.lab.netns("z1")
    cloud.lab.plug(cloud.ns["h3"], f"tap{vm.mac.replace(':', '')}", "br160", guest, vm.mac)
    assert cloud.lab.dhcp_client(guest) == vm.address
    cloud.lab.echo_server(guest, vm.address)

    # Before: alice's configuration names h1's address, and reaches the instance.
    (before,) = admin.list_vpns()
    assert (before.public_address, before.public_port) == ("203.0.113.11", PORT)
    # Issued by h1's own authority: its agent runs in its namespace.
    old = cloud.service("h1").vpn_client_config("zeta", "alice", cloud.ns["h1"])
    assert f"remote 203.0.113.11 {PORT}\n" in old
    alice = VpnClient(cloud, "alice")
    given = alice.connect(old, "old")
    assert ipaddress.IPv4Address(given) in ipaddress.IPv4Network(CIDR)
    assert cloud.lab.fetch(alice.ns, f"http://{vm.address}:8080/") == given
    alice.disconnect()

    # h1 dies and its network is evacuated to h2.
    cloud.kill("h1")
    for link in ("und0", "pub0"):
        in_ns(cloud.ns["h1"], "ip", "link", "set", link, "down")
    cloud.wait(
        "h1 shown down",
        lambda: not next(h for h in admin.list_hosts() if h.name == "h1").alive,
        timeout=HOST_DOWN_TIME * 4,
    )
    assert admin.evacuate_host("h1", to="h2").networks == ((CIDR, "h2"),)
    cloud.wait("zeta's VPN answering on h2", _served(cloud, "h2").answers)
    cloud.wait_applied(("h2", "h3"))

    # `vpn list` says where clients must connect now, and that alice's configuration
    # was made for where the VPN no longer is.
    (after,) = admin.list_vpns()
    assert (after.public_address, after.public_port) == ("203.0.113.12", PORT)
    assert (after.state, after.out_of_date) == ("on h2", 1)
    (user,) = admin.list_vpn_users("zeta")
    assert (user.user, user.state, user.made_for, user.host) == (
        "alice",
        "out of date",
        f"203.0.113.11:{PORT}",
        "h1",
    )

    # Issued again on h2: it names h2's address, connects, and reaches the instance.
    new = cloud.service("h2").vpn_client_config("zeta", "alice", cloud.ns["h2"])
    assert f"remote 203.0.113.12 {PORT}\n" in new
    given = alice.connect(new, "new")
    assert ipaddress.IPv4Address(given) in ipaddress.IPv4Network(CIDR)
    assert cloud.lab.fetch(alice.ns, f"http://{vm.address}:8080/") == given
    alice.disconnect()
    (user,) = admin.list_vpn_users("zeta")
    assert (user.state, user.made_for, user.host) == ("active", f"203.0.113.12:{PORT}", "h2")
    assert admin.list_vpns()[0].out_of_date == 0
    # The DHCP lease of the instance is answered by the new host too.
    given_lease = lease(cloud.lab, guest)
    assert given_lease is not None and given_lease["serverid"] == "10.56.0.1"
