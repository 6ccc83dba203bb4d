"""Security groups judging IPv6, proven from inside guests on a dual-stack network: a
guest is reached over IPv6 from the public side and from another guest only as a rule
of its groups allows (a TCP port, ICMPv6 echo, members of a group), the default group
lets its members in over IPv6, neighbour discovery keeps working with the groups table
loaded, and a removed rule stops new IPv6 connections. Each change is applied as its
own scoped change (the filter at the keys it names), and the whole comparison after it
finds nothing left to do."""

from __future__ import annotations

import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

from core.linux.scope import Scope
from core.linux.secgroups import tables as sg
from core.linux.secgroups.operations import DeleteFilterTable
from core.linux.secgroups.whole import CreateWholeFilter
from core.views import AddressView
from tests.host.conftest import Lab, in_ns, sh
from tests.host.guests6 import addresses, default_routes, rdisc6, resolve6, wait_for
from tests.host.probes import probe, serve
from tests.host.scenario import NetworkHost, network_host
from tests.host.test_secgroup_keys import Spy, _named

pytestmark = pytest.mark.skipif(
    sh("sh", "-c", "command -v rdisc6", check=False).returncode != 0,
    reason="missing program: rdisc6 (Debian: ndisc6)",
)

PREFIX = "2001:db8:46::/64"
GATEWAY = "2001:db8:46::1"
PUBLIC_V6 = "2001:db8:ff::1"
TCP = [22, 80, 8080]


@dataclass
class Guest:
    ns: str
    vm: AddressView

    @property
    def v6(self) -> str:
        assert self.vm.address_v6 is not None
        return self.vm.address_v6


def _cloud(lab: Lab, tmp_path: Path) -> NetworkHost:
    """A network host with one dual-stack (SLAAC) network, routed to a public side that
    has an IPv6 address and a route to the /64 through the host."""
    host = network_host(lab, tmp_path)
    host.service.create_project("alpha")
    host.service.create_networks("10.46.0.0/24", 1, 256, None, None, PREFIX)
    host.sync.sync()
    lab.address(host.ns, "pub0", "2001:db8:ff::2/64")
    lab.address(host.public, "eth0", f"{PUBLIC_V6}/64")
    in_ns(host.public, "ip", "-6", "route", "add", PREFIX, "via", "2001:db8:ff::2")
    assert wait_for(lambda: addresses(host.public))
    return host


def _guest(host: NetworkHost, name: str, groups: list[str]) -> Guest:
    vm = host.service.launch_instance("alpha", name, groups).addresses[0]
    _apply_change(host)
    (network,) = host.service.list_networks()
    ns = host.instance(name, vm.mac, network.bridge)
    guest = Guest(ns, vm)
    # Its address from the gateway's router adverts, through the loaded groups table:
    # neighbour discovery passes both ways.
    assert wait_for(lambda: addresses(ns), 30) == [f"{guest.v6}/64"]
    return guest


def _apply_change(host: NetworkHost, *, compare: bool = True) -> None:
    """The last change applied at its own keys, then (``compare``) the whole
    comparison: empty."""
    scope = Scope.of(host.service.last_change)  # type: ignore[arg-type]
    assert scope is not None and scope.filter_keyed
    host.sync.sync(scope)
    if compare:
        assert host.sync.plan().operations == ()


def _reached(ns: str, guest: Guest) -> set[str]:
    """What of TCP 22, 80, 8080 and ICMPv6 echo gets an answer from ``guest`` over IPv6."""
    cases = [("tcp", guest.v6, p) for p in TCP] + [("icmp", guest.v6, 128)]
    results = probe(ns, cases)
    return {f"{c[0]} {c[2]}" for c, ok in zip(cases, results, strict=True) if ok}


# A datagram to a closed port: the ICMPv6 port unreachable that comes back is no rule's
# business, it is related to the guest's own flow.
REFUSED = r"""
import socket, sys
s = socket.socket(socket.AF_INET6, socket.SOCK_DGRAM); s.settimeout(2)
s.connect((sys.argv[1], 9))
for _ in range(3):
    s.send(b"x")
    try:
        s.recv(16)
    except ConnectionRefusedError:
        print("refused"); break
    except socket.timeout:
        continue
else:
    print("silence")
"""


def _rule_id(host: NetworkHost, group: str, port: int, ethertype: str) -> int:
    (rule,) = [
        r
        for r in host.service.list_security_group_rules("alpha", group)
        if r.from_port == port and r.ethertype == ethertype
    ]
    return rule.id


def test_ipv6_reaches_a_guest_only_as_its_rules_allow(lab: Lab, tmp_path: Path) -> None:
    host = _cloud(lab, tmp_path)
    service = host.service
    service.create_security_group("alpha", "web")
    web = _guest(host, "web", ["web"])
    client = _guest(host, "client", ["default"])
    serve(lab, web.ns, web.v6, TCP, [])

    # The guest keeps what the advert gives it with the table loaded: its default route
    # via the gateway and the DNS server, which answers it over IPv6.
    assert wait_for(lambda: default_routes(web.ns))
    assert rdisc6(web.ns)["Recursive DNS server"] == GATEWAY
    assert resolve6(web.ns, GATEWAY, "client") == ("NOERROR", [client.v6])

    # No rule of web lets anything in over IPv6: from the public side or a guest.
    assert _reached(host.public, web) == set()
    assert _reached(client.ns, web) == set()
    assert not service.explain_ingress("web", PUBLIC_V6, "tcp", 80).allowed
    # An ICMPv6 error about the guest's own flow reaches it (conntrack's related).
    assert in_ns(web.ns, sys.executable, "-c", REFUSED, PUBLIC_V6).stdout.strip() == "refused"

    # An IPv4 rule opens nothing over IPv6.
    service.add_security_group_rule("alpha", "web", "tcp", 22, 22)
    _apply_change(host)
    assert _reached(host.public, web) == set()

    # A TCP port from the public side's /64, and ICMPv6 echo from anywhere.
    service.add_security_group_rule("alpha", "web", "tcp", 80, 80, cidr="2001:db8:ff::/64")
    service.add_security_group_rule("alpha", "web", "icmpv6", 128, -1)
    _apply_change(host)
    assert _reached(host.public, web) == {"tcp 80", "icmp 128"}
    assert _reached(client.ns, web) == {"icmp 128"}
    verdict = service.explain_ingress("web", PUBLIC_V6, "tcp", 80)
    assert verdict.allowed and "tcp 80 from 2001:db8:ff::/64" in verdict.decided_by
    assert not service.explain_ingress("web", client.v6, "tcp", 80).allowed

    # Members of a group, by their IPv6 addresses: the client (in default) on 8080.
    service.add_security_group_rule(
        "alpha", "web", "tcp", 8080, 8080, source_group="default", ethertype="IPv6"
    )
    _apply_change(host)
    assert _reached(client.ns, web) == {"tcp 8080", "icmp 128"}
    assert _reached(host.public, web) == {"tcp 80", "icmp 128"}
    assert service.explain_ingress("web", client.v6, "tcp", 8080).allowed

    # A removed rule stops new connections over IPv6.
    service.remove_security_group_rule(_rule_id(host, "web", 80, "IPv6"))
    _apply_change(host)
    assert _reached(host.public, web) == {"icmp 128"}
    # The client leaves default: it is no member any more, and 8080 closes to it.
    service.remove_instance_security_group("client", "default")
    _apply_change(host)
    assert _reached(client.ns, web) == {"icmp 128"}


def test_the_default_group_lets_its_members_in_over_ipv6(lab: Lab, tmp_path: Path) -> None:
    host = _cloud(lab, tmp_path)
    host.service.create_security_group("alpha", "other")
    first = _guest(host, "first", ["default"])
    second = _guest(host, "second", ["default"])
    outsider = _guest(host, "outsider", ["other"])
    serve(lab, first.ns, first.v6, TCP, [])
    assert _reached(second.ns, first) == {"tcp 22", "tcp 80", "tcp 8080", "icmp 128"}
    assert _reached(outsider.ns, first) == set()
    assert _reached(host.public, first) == set()
    # The outsider joins default: it is a member, by its IPv6 address too.
    host.service.add_instance_security_group("outsider", "default")
    _apply_change(host)
    assert _reached(outsider.ns, first) == {"tcp 22", "tcp 80", "tcp 8080", "icmp 128"}


def test_the_ipv4_only_groups_table_gives_way_to_the_inet_one(lab: Lab, tmp_path: Path) -> None:
    host = _cloud(lab, tmp_path)
    # What an earlier netcon left: its groups table judged IPv4 only.
    in_ns(host.ns, "nft", "add", "table", "ip", "netcon_groups")
    in_ns(host.ns, "nft", "add", "chain", "ip", "netcon_groups", "forward",
          "{ type filter hook forward priority 0; }")  # fmt: skip
    host.service.launch_instance("alpha", "web1")
    applied = host.sync.sync()
    (made,) = [op for op in applied.operations if isinstance(op, CreateWholeFilter)]
    assert [port.instance for port in made.desired.ports] == ["web1"]
    assert DeleteFilterTable(*sg.OLD_GROUPS) in applied.operations
    assert DeleteFilterTable(*sg.OLD_GROUPS).describe() == (
        "delete nftables table ip netcon_groups (IPv4 only; table inet netcon_groups "
        "judges both families)"
    )
    tables = in_ns(host.ns, "nft", "list", "tables").stdout.split("\n")
    assert "table inet netcon_groups" in tables and "table ip netcon_groups" not in tables
    assert host.sync.plan().operations == ()


def test_an_ipv6_rule_change_is_elements_of_its_groups_ipv6_sets(
    lab: Lab, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    host = _cloud(lab, tmp_path)
    service = host.service
    service.create_security_group("alpha", "web")
    web = _guest(host, "web", ["web"])
    client = _guest(host, "client", ["default"])
    serve(lab, web.ns, web.v6, TCP, [])
    web_id = next(g.id for g in service.list_security_groups("alpha") if g.name == "web")
    spy = Spy(monkeypatch)

    service.add_security_group_rule("alpha", "web", "tcp", 80, 80, cidr="2001:db8:46::/64")
    _apply_change(host, compare=False)
    # One element into web's IPv6 port set; no table listed, only web's own sets.
    assert [_named(c) for c in spy.commands()] == [sg.group_set(web_id, "ports6")]
    assert not [c for c in spy.listed if c.startswith("list table")]
    assert host.sync.plan().operations == ()
    assert _reached(client.ns, web) == {"tcp 80"}

    # The client becomes a member of web, by its IPv6 address too: its port's map
    # elements (both families) and web's member sets, by key.
    service.add_security_group_rule(
        "alpha", "web", "tcp", 22, 22, source_group="web", ethertype="IPv6"
    )
    _apply_change(host)
    spy.reset()
    service.add_instance_security_group("client", "web")
    _apply_change(host, compare=False)
    touched = {_named(c) for c in spy.commands()}
    assert sg.member_set(web_id, "IPv6") in touched and sg.INSTANCE_MAP6 in touched
    assert not [c for c in spy.listed if c.startswith("list table")]
    assert host.sync.plan().operations == ()
    assert _reached(client.ns, web) == {"tcp 80", "tcp 22"}

    # Terminated: its IPv6 elements go by key too (the global address is worked out
    # from its MAC and its network), so the whole comparison finds nothing left.
    spy.reset()
    service.terminate_instance("client")
    _apply_change(host, compare=False)
    # (The network's own small IPv6 metadata table is read whole: its hosts file changed.)
    filter_tables = [f"list table {family} {name}" for family, name in sg.TABLES]
    assert not [c for c in spy.listed if c in filter_tables]
    assert host.sync.plan().operations == ()
    listing = in_ns(host.ns, "nft", "list", "ruleset").stdout
    assert client.v6 not in listing
