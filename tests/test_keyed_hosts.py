"""A launch or termination read at its own addresses: the network's hosts, held leases
and ports of those addresses alone, which with the hosts file the host has make exactly
what a read of the whole network makes."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pytest

from core.desired.host import read_desired
from core.linux import dnsmasq
from core.linux.desired import DesiredHost, DesiredNetwork, patched
from core.linux.scope import Scope
from core.linux.secgroups.keyed import KeyedFilter
from core.service import NetconService
from tests.support import make_service


@pytest.fixture
def service(tmp_path: Path) -> NetconService:
    made = make_service(tmp_path)
    made.create_networks("10.31.0.0/24", 1, 256)
    made.create_project("alpha")
    for name in ("web1", "web2", "web3", "web4"):
        made.launch_instance("alpha", name)
    return made


def _whole(service: NetconService) -> DesiredHost:
    return read_desired(service.db, service.settings)


def _keyed(service: NetconService) -> DesiredHost:
    assert service.last_change is not None
    scope = Scope.of(service.last_change)
    assert scope is not None and scope.filter_ports
    return read_desired(service.db, service.settings, scope)


def _files(network: DesiredNetwork) -> tuple[str, str]:
    return dnsmasq.hosts_text(network), dnsmasq.names_text(network)


def _merged(before: DesiredNetwork, keyed: DesiredNetwork) -> tuple[str, str]:
    """The files a planner makes from the files ``before`` wrote and the keyed read."""
    assert keyed.keys is not None
    hosts, names = _files(before)
    want_hosts, want_names = _files(keyed)
    addresses = keyed.keys.addresses
    return (
        dnsmasq.keyed_text(hosts, addresses, want_hosts, names=False),
        dnsmasq.keyed_text(names, addresses, want_names, names=True),
    )


def test_a_termination_reads_only_its_own_address(service: NetconService) -> None:
    before = _whole(service)
    gone = service.terminate_instance("web2")
    (network,) = _keyed(service).networks
    assert network.keys is not None
    assert network.keys.addresses == {a.address for a in gone.addresses}
    assert network.dhcp is not None and network.dhcp.hosts == ()
    assert network.ports == ()
    (whole,) = _whole(service).networks
    assert _merged(before.networks[0], network) == _files(whole)
    # Remembered as the whole state would be, bar the order of its ports.
    (remembered,) = patched(before, _keyed(service)).networks
    assert remembered.keys is None
    assert replace(remembered, ports=tuple(sorted(remembered.ports))) == replace(
        whole, ports=tuple(sorted(whole.ports))
    )


def test_a_launch_reads_only_its_own_address(service: NetconService) -> None:
    before = _whole(service)
    made = service.launch_instance("alpha", "web5").addresses[0]
    (network,) = _keyed(service).networks
    assert network.dhcp is not None
    assert [h.address for h in network.dhcp.hosts] == [made.address]
    (whole,) = _whole(service).networks
    assert _merged(before.networks[0], network) == _files(whole)
    (remembered,) = patched(before, _keyed(service)).networks
    assert remembered.dhcp == whole.dhcp


def test_a_line_goes_back_where_its_address_sorts() -> None:
    have = "m1,a.novalocal,10.0.0.2\nm3,c.novalocal,10.0.0.10\n"
    assert (
        dnsmasq.keyed_text(have, frozenset({"10.0.0.9"}), "m2,b.novalocal,10.0.0.9\n", names=False)
        == "m1,a.novalocal,10.0.0.2\nm2,b.novalocal,10.0.0.9\nm3,c.novalocal,10.0.0.10\n"
    )
    # 10.0.0.1 is not 10.0.0.10: only the named address's line goes.
    names = "10.0.0.1 a.novalocal a\n10.0.0.10 c.novalocal c\n"
    assert (
        dnsmasq.keyed_text(names, frozenset({"10.0.0.1"}), "", names=True)
        == "10.0.0.10 c.novalocal c\n"
    )


def test_a_file_that_is_none_of_ours_is_refused() -> None:
    with pytest.raises(ValueError):
        dnsmasq.keyed_text("garbage\n", frozenset({"10.0.0.1"}), "", names=False)


def _keyed_filter(service: NetconService) -> KeyedFilter:
    security = _keyed(service).security
    assert isinstance(security, KeyedFilter)
    return security


def test_a_source_other_instances_here_need_is_not_read(service: NetconService) -> None:
    for group in ("src", "web", "app", "db", "lonely"):
        service.create_security_group("alpha", group)
    service.add_security_group_rule("alpha", "web", "tcp", 5000, None, source_group="src")
    service.add_security_group_rule("alpha", "app", "tcp", 5000, None, source_group="src")
    service.add_security_group_rule("alpha", "db", "tcp", 5432, None, source_group="lonely")
    service.launch_instance("alpha", "a1", ["app"])
    service.launch_instance("alpha", "s1", ["src"])
    lonely = service.launch_instance("alpha", "l1", ["lonely"]).addresses[0]
    ids = {g.name: g.id for g in service.list_security_groups("alpha")}

    # app's member here needs src's set too: it is in the kernel, its members unread.
    service.add_instance_security_group("web1", "web")
    security = _keyed_filter(service)
    (src,) = [s for s in security.sources if s.id == ids["src"]]
    assert ids["src"] in security.unread_sources and src.members == ()

    # Nobody here needed lonely's set before: read whole, to be made if missing.
    service.add_instance_security_group("web1", "db")
    security = _keyed_filter(service)
    (source,) = [s for s in security.sources if s.id == ids["lonely"]]
    assert ids["lonely"] not in security.unread_sources
    assert [address for address, _ in source.members] == [lonely.address]
