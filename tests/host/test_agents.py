"""Several network hosts on one PostgreSQL, each kept by its own `netcon agent` process.

Three hosts are namespaces joined by a VXLAN underlay (a bridge in a fourth namespace)
and a public segment; a change made through the service reaches exactly the hosts it
concerns, and a host that dies is shown down, evacuated, and its guests keep their
leases and floating IPs from the host that took over.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from core.linux.ports import port_name
from core.linux.vpn.server import ServerFiles
from core.service import NetconService
from core.service.hostsync import HostSync
from tests.conftest import PostgresServer
from tests.host.agents import HOST_DOWN_TIME, HOSTS, Cloud, Proxy
from tests.host.conftest import Lab, in_ns
from tests.host.probes import probe

pytestmark = pytest.mark.postgres


@pytest.fixture
def cloud(lab: Lab, pg_url: str, tmp_path: Path) -> Cloud:
    built = Cloud(lab, pg_url, tmp_path)
    admin = built.service()
    admin.db.dispose()
    for name in HOSTS:
        built.start(name)
    built.wait_alive()
    return built


def _guest(cloud: Cloud, host: str, mac: str, bridge: str, purpose: str) -> str:
    """An instance's guest, plugged as the compute side plugs it: tap + MAC (a port
    of any other name passes nothing on netcon's bridges)."""
    ns = cloud.lab.netns(purpose)
    cloud.lab.plug(cloud.ns[host], port_name(mac), bridge, ns, mac)
    return ns


def test_a_change_reaches_exactly_the_hosts_it_concerns(cloud: Cloud) -> None:
    admin = cloud.service()
    admin.create_networks("10.50.0.0/24", 1, 256)
    admin.create_project("alpha")
    far = admin.launch_instance("alpha", "far", host="h2")
    serving = admin.list_networks()[0].host
    assert serving is not None and serving != "h2"
    cloud.wait_applied()

    assert "10.50.0.1/24" in cloud.links(serving)["br100"]
    assert cloud.links("h2")["br100"] == []  # a compute host: bridge and segment only
    assert "vx100" in cloud.links("h2")
    idle = next(h for h in HOSTS if h not in (serving, "h2"))
    assert "br100" not in cloud.links(idle)
    assert "applied change" not in cloud.log(idle)

    # The instance on h2 is answered by its network host's dnsmasq across VXLAN and
    # reaches the gateway there (which answers a guest's ping, not its other ports).
    guest = _guest(cloud, "h2", far.addresses[0].mac, "br100", "far")
    assert cloud.lab.dhcp_client(guest) == far.addresses[0].address
    assert probe(guest, [("icmp", "10.50.0.1", 8)]) == [True]


def test_a_killed_agent_converges_when_it_comes_back(cloud: Cloud) -> None:
    admin = cloud.service()
    admin.create_networks("10.51.0.0/24", 1, 256, 110)
    admin.create_project("beta")
    admin.launch_instance("beta", "b1")
    serving = admin.list_networks()[0].host
    assert serving is not None
    cloud.kill(serving)  # mid-apply, or just before: either way pending
    admin.launch_instance("beta", "b2")
    cloud.start(serving)
    cloud.wait_applied()
    layer = HostSync(admin, settings=cloud.settings(serving), netns=cloud.ns[serving])
    try:
        assert layer.plan().describe() == []
    finally:
        layer.close()


def test_an_agent_starts_and_stops_the_vpn_of_a_network_it_serves(cloud: Cloud) -> None:
    # The console runs on none of the three hosts: every VPN change reaches its host
    # through that host's agent, as any other change does.
    console = NetconService(cloud.url, cloud.settings("h1").replace(host="console"))
    console.create_networks("10.55.0.0/24", 1, 256, 150, 11960)
    console.create_project("zeta")
    console.launch_instance("zeta", "z1")
    serving = console.list_networks()[0].host
    assert serving in HOSTS
    cloud.wait_applied()

    assert console.run_vpn("zeta") == [f"VPN of project zeta is wanted on host {serving}"]
    files = ServerFiles(cloud.settings(serving).state_dir, "zeta", cloud.ns[serving])
    cloud.wait(f"zeta's OpenVPN answering on {serving}", files.answers)
    cloud.wait_applied()
    assert "tapvpn150" in cloud.links(serving)
    listening = in_ns(cloud.ns[serving], "ss", "-Hlun").stdout
    assert ":11960 " in listening
    assert {v.project: v.state for v in console.list_vpns()}["zeta"] == f"on {serving}"
    for other in HOSTS:
        if other != serving:
            assert ":11960 " not in in_ns(cloud.ns[other], "ss", "-Hlun").stdout

    assert console.stop_vpn("zeta") == [
        f"VPN of project zeta is no longer wanted on host {serving}"
    ]
    cloud.wait(f"zeta's OpenVPN gone from {serving}", lambda: files.running() is None)
    cloud.wait_applied()
    assert not files.answers()
    assert "tapvpn150" not in cloud.links(serving)
    assert ":11960 " not in in_ns(cloud.ns[serving], "ss", "-Hlun").stdout
    assert {v.project: v.state for v in console.list_vpns()}["zeta"] == "off"
    console.db.dispose()


def test_a_dead_host_is_evacuated_and_its_guests_keep_lease_and_floating_ip(
    cloud: Cloud,
) -> None:
    admin = cloud.service("h3")
    admin.create_networks("10.52.0.0/24", 1, 256, 120)
    admin.create_project("gamma")
    # The guest's web server is opened to everyone by its security group.
    admin.add_security_group_rule("gamma", "default", "tcp", 8080, 8080)
    vm = admin.launch_instance("gamma", "g1", host="h2")
    dead = admin.list_networks()[0].host
    assert dead is not None and dead != "h2"
    admin.create_floating_range(dead, "203.0.113.100/30", pool="public")
    floating = admin.allocate_floating_ip("gamma", "public").address
    admin.associate_floating_ip(floating, "g1")
    cloud.wait_applied()
    guest = _guest(cloud, "h2", vm.addresses[0].mac, "br120", "g1")
    address = vm.addresses[0].address
    assert cloud.lab.dhcp_client(guest) == address
    in_ns(guest, "ip", "route", "replace", "default", "via", "10.52.0.1")
    cloud.lab.echo_server(guest, address)
    assert cloud.lab.fetch(cloud.public, f"http://{floating}:8080/") == "203.0.113.1"

    # The host dies: its agent is killed and it drops off both segments.
    cloud.kill(dead)
    for link in ("und0", "pub0"):
        in_ns(cloud.ns[dead], "ip", "link", "del", link)
    cloud.wait(
        f"{dead} shown down",
        lambda: not next(h for h in admin.list_hosts() if h.name == dead).alive,
        timeout=HOST_DOWN_TIME * 4,
    )
    live = next(h for h in HOSTS if h not in (dead, "h2"))
    moved = admin.evacuate_host(dead, to=live)
    assert moved.networks == (("10.52.0.0/24", live),)
    cloud.wait_applied((live, "h2"))

    assert "10.52.0.1/24" in cloud.links(live)["br120"]
    assert cloud.lab.dhcp_client(guest) == address  # the same lease, from the new host
    assert cloud.lab.fetch(cloud.public, f"http://{floating}:8080/") == "203.0.113.1"


def test_a_partitioned_agent_stops_serving_within_its_lease(
    lab: Lab, own_pg_server: PostgresServer, tmp_path: Path
) -> None:
    url = own_pg_server.url + "postgres"
    cloud = Cloud(lab, url, tmp_path)
    proxy = Proxy(own_pg_server.port)
    cloud.urls["h1"] = f"postgresql+psycopg://postgres@127.0.0.1:{proxy.port}/postgres"
    try:
        cloud.service().heartbeat("h1")
        for name in HOSTS:
            cloud.start(name)
        cloud.wait_alive()
        admin = cloud.service("h2")
        admin.create_networks("10.53.0.0/24", 1, 256, 130, 11970)
        admin.create_project("delta")
        admin.launch_instance("delta", "d1", host="h1")
        admin.modify_network("10.53.0.0/24", host="h1")
        assert admin.run_vpn("delta") == ["VPN of project delta is wanted on host h1"]
        cloud.wait_applied()
        assert "10.53.0.1/24" in cloud.links("h1")["br130"]
        vpn = ServerFiles(cloud.settings("h1").state_dir, "delta", cloud.ns["h1"])
        cloud.wait("delta's VPN to answer on h1", vpn.answers)

        proxy.cut()
        cloud.wait(
            "h1 to stop serving",
            lambda: cloud.links("h1").get("br130") == [],
            timeout=HOST_DOWN_TIME * 4,
        )
        # The kernel takes the gateway away when the lease ends; the agent, finding its
        # lease lapsed at its next try, stops the rest.
        cloud.wait("h1's agent to fence", lambda: "stopping gateway addresses" in cloud.log("h1"))
        cloud.wait("h1 to stop delta's VPN", lambda: vpn.running() is None)
        assert not vpn.answers()
        assert not list((lab.state_dir / "h1").glob("**/dhcp/br130.pid"))
    finally:
        proxy.close()


def test_the_database_restarted_under_running_agents_loses_no_change(
    lab: Lab, own_pg_server: PostgresServer, tmp_path: Path
) -> None:
    cloud = Cloud(lab, own_pg_server.url + "postgres", tmp_path)
    cloud.service().heartbeat("h1")
    for name in HOSTS:
        cloud.start(name)
    cloud.wait_alive()
    admin = cloud.service()
    admin.create_networks("10.54.0.0/24", 1, 256, 140)
    admin.create_project("eps")
    admin.launch_instance("eps", "e1")
    serving = admin.list_networks()[0].host
    admin.db.dispose()
    # A restart, not a crash: what was committed is still there afterwards.
    own_pg_server.stop(mode="fast")
    own_pg_server.start()
    admin = cloud.service()
    admin.launch_instance("eps", "e2")
    cloud.wait_applied()
    hosts_file = next((lab.state_dir / str(serving)).glob("**/dhcp/br140.conf")).read_text()
    assert "e1.novalocal" in hosts_file and "e2.novalocal" in hosts_file
