"""What a guest reaches of its network host itself, seen from inside guest namespaces:
DHCP, DNS, ping and metadata, only at its own network's addresses, and nothing else that
listens there; what the host started, and what crosses it, still flows; a Flat network's
bridge is left alone."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from core.linux import hostinput
from core.linux.hostinput import GuardBridge
from core.linux.scope import Scope
from tests.host.conftest import Lab, in_ns, sh
from tests.host.guests import resolve
from tests.host.guests6 import addresses, default_routes, ping6, rdisc6, resolve6, wait_for
from tests.host.probes import probe, serve
from tests.host.scenario import PUBLIC_CLIENT, PUBLIC_HOST, network_host
from tests.host.test_metadata import fetch

ECHO = 8
HOSTNAME = "/latest/meta-data/hostname"


def _guarded(ns: str) -> set[str] | None:
    """The bridges in the host input filter's set (None: no such table)."""
    found = in_ns(
        ns, "nft", "-j", "list", "set", hostinput.FAMILY, hostinput.TABLE, hostinput.SET,
        check=False,
    )  # fmt: skip
    if found.returncode != 0:
        return None
    (entry,) = [o["set"] for o in json.loads(found.stdout)["nftables"] if "set" in o]
    return set(entry.get("elem", []))


def test_a_guest_reaches_only_what_netcon_serves_on_its_host(lab: Lab, tmp_path: Path) -> None:
    host = network_host(lab, tmp_path)
    service = host.service
    service.create_project("alpha", manager="flatdhcp")
    (network,) = service.create_networks(
        "10.61.0.0/24", 1, 256, manager="flatdhcp", bridge="brdhcp"
    )
    vm = service.launch_instance("alpha", "vm1").addresses[0]
    described = host.sync.sync().describe()
    assert any(
        line.startswith("let guests on brdhcp reach only DHCP, DNS, ping and metadata")
        for line in described
    ), described
    assert host.sync.plan().operations == ()  # a second apply does nothing
    assert _guarded(host.ns) == {"brdhcp"}
    gateway = network.gateway
    assert gateway is not None

    # Something else of the host's listens on every address: an sshd, a database.
    serve(lab, host.ns, "0.0.0.0", tcp=[9999], udp=[9998])
    guest = host.instance("vm1", vm.mac, network.bridge)
    # DHCP, DNS and metadata answer the guest.
    assert lab.dhcp_client(guest) == vm.address
    assert resolve(guest, gateway, "vm1") == ("NOERROR", [vm.address])
    assert fetch(guest, (HOSTNAME,))[HOSTNAME] == [200, "vm1.novalocal"]
    # Ping of the gateway answers; the host's other service does not, on the gateway
    # nor on the host's public address.
    assert probe(
        guest,
        [
            ("icmp", gateway, ECHO),
            ("tcp", gateway, 9999),
            ("udp", gateway, 9998),
            ("tcp", PUBLIC_HOST, 9999),
        ],
    ) == [True, False, False, False]
    # The public side still reaches it: only netcon's bridges are filtered.
    assert probe(host.public, [("tcp", PUBLIC_HOST, 9999)]) == [True]
    # What the host starts towards a guest gets its replies, and what crosses the host
    # (a guest to the outside, NATed) is not touched.
    service.add_security_group_rule("alpha", "default", "tcp", 7000, 7000, cidr="0.0.0.0/0")
    host.sync.sync()
    serve(lab, guest, vm.address, tcp=[7000], udp=[])
    serve(lab, host.public, PUBLIC_CLIENT, tcp=[7001], udp=[])
    assert probe(host.ns, [("tcp", vm.address, 7000)]) == [True]
    assert probe(guest, [("tcp", PUBLIC_CLIENT, 7001)]) == [True]


def test_a_flat_networks_bridge_is_not_filtered(lab: Lab, tmp_path: Path) -> None:
    """A Flat network's bridge is the admin's and may carry the host's own uplink:
    whatever reaches the host over it is the admin's business."""
    host = network_host(lab, tmp_path)
    in_ns(host.ns, "ip", "link", "add", "brflat", "type", "bridge")
    in_ns(host.ns, "ip", "link", "set", "brflat", "up")
    lab.address(host.ns, "brflat", "10.62.0.250/24")
    service = host.service
    service.create_project("flatproj", manager="flat")
    service.create_networks("10.62.0.0/24", manager="flat", bridge="brflat")
    service.create_project("alpha", manager="flatdhcp")
    service.create_networks("10.63.0.0/24", 1, 256, manager="flatdhcp", bridge="brdhcp")
    vm = service.launch_instance("flatproj", "vm1").addresses[0]
    service.launch_instance("alpha", "web1")
    host.sync.sync()
    assert host.sync.plan().operations == ()
    assert _guarded(host.ns) == {"brdhcp"}

    serve(lab, host.ns, "0.0.0.0", tcp=[9999], udp=[])
    guest = host.instance("vm1", vm.mac, "brflat")
    lab.address(guest, "eth0", f"{vm.address}/24")
    assert probe(guest, [("tcp", "10.62.0.250", 9999)]) == [True]

    # The filter goes with the last bridge of netcon's; the Flat network stays.
    service.terminate_instance("web1")
    service.delete_network("10.63.0.0/24")
    described = host.sync.sync().describe()
    assert any(f"delete nftables table inet {hostinput.TABLE}" in d for d in described), described
    assert _guarded(host.ns) is None
    assert not host.sync.plan()


@pytest.mark.skipif(
    sh("sh", "-c", "command -v rdisc6", check=False).returncode != 0,
    reason="missing program: rdisc6 (Debian: ndisc6)",
)
def test_an_ipv6_guest_gets_adverts_and_ping_and_nothing_else(lab: Lab, tmp_path: Path) -> None:
    host = network_host(lab, tmp_path)
    service = host.service
    service.create_project("alpha", manager="flatdhcp")
    (network,) = service.create_networks(
        "10.64.0.0/24", 1, 256, None, None, "2001:db8:64::/64", manager="flatdhcp",
        bridge="brdhcp6",
    )  # fmt: skip
    web = service.launch_instance("alpha", "web1").addresses[0]
    host.sync.sync()
    assert host.sync.plan().operations == ()
    serve(lab, host.ns, "::", tcp=[9999], udp=[9998])

    guest = host.instance("web1", web.mac, network.bridge)
    # Router solicitation, adverts and neighbour discovery still work: SLAAC gives the
    # database's address and the route goes through the bridge.
    assert wait_for(lambda: addresses(guest)) == [f"{web.address_v6}/64"]
    assert wait_for(lambda: default_routes(guest))
    assert rdisc6(guest)["Prefix"] == "2001:db8:64::/64"
    assert ping6(guest, "2001:db8:64::1")
    assert resolve6(guest, "2001:db8:64::1", "web1") == ("NOERROR", [web.address_v6])
    assert probe(guest, [("tcp", "2001:db8:64::1", 9999), ("udp", "2001:db8:64::1", 9998)]) == [
        False,
        False,
    ]


def test_a_scoped_apply_guards_its_networks_bridge_by_key(
    lab: Lab, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    host = network_host(lab, tmp_path)
    service = host.service
    service.create_project("alpha")
    (first,) = service.create_networks("10.65.0.0/24", 1, 256)
    service.launch_instance("alpha", "web1")
    # Made by the first scoped apply (no table yet: read in full)...
    described = host.sync.sync(scope=Scope(frozenset({first.id}))).describe()
    assert f"let guests on {first.bridge} reach only DHCP, DNS, ping and metadata on this host" in (
        described
    )
    # ...then asked by key only: a scoped apply lists no table.
    service.create_project("beta")
    (second,) = service.create_networks("10.66.0.0/24", 1, 256, 101)
    service.launch_instance("beta", "db1")
    monkeypatch.setattr(hostinput, "observe", _refuse)
    scope = Scope(frozenset({second.id}))
    assert [op for op in host.sync.sync(scope=scope).operations if isinstance(op, GuardBridge)] == [
        GuardBridge(second.bridge, add=True)
    ]
    assert not host.sync.sync(scope=scope)
    monkeypatch.undo()
    assert _guarded(host.ns) == {first.bridge, second.bridge}
    assert host.sync.plan().operations == ()


@pytest.mark.skipif(
    sh("sh", "-c", "command -v rdisc6", check=False).returncode != 0,
    reason="missing program: rdisc6 (Debian: ndisc6)",
)
def test_a_guest_reaches_the_host_only_at_its_own_networks_addresses(
    lab: Lab, tmp_path: Path
) -> None:
    """Two projects' VLAN networks on one host: a guest of the first gets DHCP, DNS,
    ping and metadata at its own gateway, over IPv4 and IPv6, and no answer at all
    (not even to ping) at the other network's gateway, where that project's dnsmasq
    would name its instances."""
    host = network_host(lab, tmp_path)
    service = host.service
    service.create_project("alpha")
    (own,) = service.create_networks("10.67.0.0/24", 1, 256, None, None, "2001:db8:67::/64")
    vm = service.launch_instance("alpha", "vm1").addresses[0]
    service.create_project("beta")
    (other,) = service.create_networks("10.68.0.0/24", 1, 256, 102, None, "2001:db8:68::/64")
    secret = service.launch_instance("beta", "secret1").addresses[0]
    host.sync.sync()
    assert host.sync.plan().operations == ()
    assert _guarded(host.ns) == {own.bridge, other.bridge}
    assert own.gateway is not None and other.gateway is not None
    own6, other6 = "2001:db8:67::1", "2001:db8:68::1"

    guest = host.instance("vm1", vm.mac, own.bridge)
    # Its own network over IPv6 first (the DHCP client's script flushes eth0's
    # addresses): router solicitation and neighbour discovery (multicast, link-local)
    # give it SLAAC and a default route; ping and DNS answer at its gateway.
    assert wait_for(lambda: addresses(guest)) == [f"{vm.address_v6}/64"]
    assert wait_for(lambda: default_routes(guest))
    assert rdisc6(guest)["Prefix"] == "2001:db8:67::/64"
    assert ping6(guest, own6)
    assert resolve6(guest, own6, "vm1") == ("NOERROR", [vm.address_v6])
    # The other network's gateway: its dnsmasq does not answer (it would name beta's
    # instance), and neither does ping.
    assert resolve6(guest, other6, "secret1")[0] == "TIMEOUT"
    assert not ping6(guest, other6)

    # IPv4: DHCP (a broadcast), DNS, ping and metadata (the DNAT made the destination
    # this bridge's gateway) at its own gateway; nothing at the other's.
    assert lab.dhcp_client(guest) == vm.address
    assert resolve(guest, own.gateway, "vm1") == ("NOERROR", [vm.address])
    assert fetch(guest, (HOSTNAME,))[HOSTNAME] == [200, "vm1.novalocal"]
    assert resolve(guest, other.gateway, "secret1")[0] == "TIMEOUT"
    # A resolver the host runs for itself on its public address is not reached either.
    serve(lab, host.ns, PUBLIC_HOST, tcp=[53], udp=[53])
    assert probe(
        guest,
        [
            ("icmp", own.gateway, ECHO),
            ("icmp", other.gateway, ECHO),
            ("tcp", PUBLIC_HOST, 53),
            ("udp", PUBLIC_HOST, 53),
        ],
    ) == [True, False, False, False]
    # Which is what beta's own guest gets there.
    neighbour = host.instance("secret1", secret.mac, other.bridge)
    assert lab.dhcp_client(neighbour) == secret.address
    assert resolve(neighbour, other.gateway, "secret1") == ("NOERROR", [secret.address])


def test_a_table_with_the_old_rules_is_made_again_once(lab: Lab, tmp_path: Path) -> None:
    """A host that has the table as it was before the address check (the same rules
    without it) gets it made whole once, keeping its guards; then nothing is planned."""
    host = network_host(lab, tmp_path)
    service = host.service
    service.create_project("alpha")
    (network,) = service.create_networks("10.69.0.0/24", 1, 256)
    service.launch_instance("alpha", "vm1")
    host.sync.sync()
    older = [
        line
        for line in hostinput.HOST_INPUT_TABLE.create(replace=True)
        if " fib daddr " not in line
    ]
    older.append(hostinput.HOST_INPUT_TABLE.element(True, hostinput.SET, f'"{network.bridge}"'))
    script = tmp_path / "older.nft"
    script.write_text("".join(line + "\n" for line in older))
    in_ns(host.ns, "nft", "-f", str(script))
    listed = in_ns(host.ns, "nft", "list", "table", hostinput.FAMILY, hostinput.TABLE).stdout
    assert " fib daddr " not in listed
    described = host.sync.sync().describe()
    assert any(
        d.startswith(f"recreate nftables table {hostinput.FAMILY} {hostinput.TABLE}")
        for d in described
    ), described
    listed = in_ns(host.ns, "nft", "list", "table", hostinput.FAMILY, hostinput.TABLE).stdout
    assert "fib daddr . iif type != { local, broadcast, multicast } drop" in listed
    assert _guarded(host.ns) == {network.bridge}
    assert host.sync.plan().operations == ()


def _refuse(*args: object, **kwargs: object) -> None:
    raise AssertionError("a scoped apply read the whole table")
