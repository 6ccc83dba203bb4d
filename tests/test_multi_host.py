"""What each host is asked to serve of a multi-host network, read from the database as
its agent reads it: every host with instances there routes them from an address of its
own and answers their DHCP alone; a host without instances there serves nothing of it
(its network host keeps the network's gateway). Host-side proof: tests/host/
test_multi_host.py."""

from __future__ import annotations

from pathlib import Path

import pytest

from core.desired.host import read_desired
from core.desired.metadata import wanted_routes
from core.errors import Conflict
from core.linux import dnsmasq
from core.linux.desired import DesiredNetwork
from core.linux.metadata.spec import Route
from core.linux.scope import Scope
from core.service import NetconService
from tests.support import make_service

CIDR = "10.70.0.0/24"


@pytest.fixture
def cloud(tmp_path: Path) -> NetconService:
    service = make_service(tmp_path, host="h1")
    for name in ("h1", "h2", "h3"):
        service.heartbeat(name)
    service.create_networks(CIDR, manager="flatdhcp", bridge="brmh", multi_host=True)
    service.create_project("ops", "flatdhcp")
    service.launch_instance("ops", "a1", host="h1")
    service.modify_network(CIDR, host="h1")
    service.launch_instance("ops", "a2", host="h2")
    service.launch_instance("ops", "a3", host="h2")
    return service


def _own(service: NetconService) -> dict[str, str]:
    return {str(f.host): f.address for f in service.list_fixed_ips().rows if f.host is not None}


def _network(service: NetconService, host: str, scope: Scope | None = None) -> DesiredNetwork:
    (network,) = read_desired(service.db, service.settings.replace(host=host), scope).networks
    return network


def test_each_host_with_instances_serves_them_from_its_own_address(
    cloud: NetconService,
) -> None:
    own = _own(cloud)
    assert sorted(own) == ["h1", "h2"]
    for host, mine, others in (("h1", ["a1"], ["a2", "a3"]), ("h2", ["a2", "a3"], ["a1"])):
        for scope in (None, Scope(network_ids=frozenset({1}))):
            network = _network(cloud, host, scope)
            assert network.gateway == own[host]
            assert network.dhcp is not None
            assert network.dhcp.dns == (own[host],)
            assert network.dhcp.serving_host == host
            # Leases for its own instances, names for all of them.
            assert [h.hostname for h in network.dhcp.hosts] == mine
            assert sorted(network.dhcp.names_file.split()[1::3]) == sorted(
                f"{name}.novalocal" for name in mine + others
            )
            argv = dnsmasq.argv("dnsmasq", network, dnsmasq.DhcpFiles(Path("/d"), "brmh"))
            assert "--dhcp-ignore=tag:!known" in argv
            assert f"option:router,{own[host]}" in dnsmasq.opts_text(network)
        settings = cloud.settings.replace(host=host)
        with cloud.db.read() as connection:
            routes = wanted_routes(connection, settings)
        assert routes == (Route("brmh", own[host]),)
        security = read_desired(cloud.db, settings).security
        assert security is not None and security.dhcp_servers == (own[host],)
    # h3 has no instance there: nothing of the network.
    assert read_desired(cloud.db, cloud.settings.replace(host="h3")).networks == ()


def test_a_host_that_loses_its_last_instance_there_stops_serving(cloud: NetconService) -> None:
    own = _own(cloud)
    cloud.terminate_instance("a2")
    assert _network(cloud, "h2").gateway == own["h2"]
    cloud.terminate_instance("a3")
    assert read_desired(cloud.db, cloud.settings.replace(host="h2")).networks == ()
    # Its address stays its own (nova-network's fixed_ips.host), for its next instance.
    assert _own(cloud) == own
    cloud.launch_instance("ops", "a4", host="h2")
    assert _network(cloud, "h2").gateway == own["h2"]


def test_the_network_host_without_instances_keeps_the_network_gateway(
    cloud: NetconService,
) -> None:
    cloud.terminate_instance("a1")
    network = _network(cloud, "h1")
    assert (network.gateway, network.dhcp) == ("10.70.0.1", None)


def test_a_hosts_own_address_is_kept_while_it_serves_instances(cloud: NetconService) -> None:
    h2 = _own(cloud)["h2"]
    with pytest.raises(Conflict, match=f"{h2} is the gateway of host h2 on {CIDR}, which serves 2"):
        cloud.unreserve_fixed_ip(h2)
    cloud.terminate_instance("a2")
    cloud.terminate_instance("a3")
    freed = cloud.unreserve_fixed_ip(h2)
    assert (freed.reserved, freed.host) == (False, None)


def test_the_metadata_service_answers_through_a_hosts_own_address(cloud: NetconService) -> None:
    own = _own(cloud)
    a2 = cloud.get_instance("a2").instance.addresses[0].address
    seen = cloud.instance_metadata(a2, via=own["h2"])
    assert seen is not None and seen.name == "a2"
    assert (seen.gateway, seen.dns) == (own["h2"], (own["h2"],))
    assert cloud.instance_metadata(a2, via="10.71.0.1") is None


def test_evacuation_moves_a_dead_hosts_instances_and_their_service(
    cloud: NetconService,
) -> None:
    from datetime import timedelta

    from sqlalchemy import update

    from core.store.schema import hosts

    with cloud.db.write() as connection:
        connection.execute(
            update(hosts)
            .where(hosts.c.name == "h2")
            .values(last_heartbeat=cloud.clock() - timedelta(hours=1))
        )
    assert cloud.down_hosts() == ["h2"]
    # It holds no network as a network host, nor a floating IP: its instances are what
    # it serves, and what the console offers to move.
    h2 = next(h for h in cloud.list_hosts() if h.name == "h2")
    assert (h2.networks, h2.floating_ips, h2.multi_host_instances) == (0, 0, 2)
    from tui.views.base import Values
    from tui.views.hosts import _evacuate_confirm, _refuse_evacuate

    assert _refuse_evacuate(h2) is None
    assert "2 multi-host instance(s)" in _evacuate_confirm(h2, Values({"to": "h3"})).question
    moved = cloud.evacuate_host("h2", to="h3")
    assert moved.networks == ()
    assert moved.instances == (("a2", "h3"), ("a3", "h3"))
    assert sorted(_own(cloud)) == ["h1", "h2", "h3"]
    assert read_desired(cloud.db, cloud.settings.replace(host="h2")).networks == ()
    network = _network(cloud, "h3")
    assert network.gateway == _own(cloud)["h3"]
    assert network.dhcp is not None
    assert [h.hostname for h in network.dhcp.hosts] == ["a2", "a3"]
    # The change reaches the host that takes over and the one that left.
    assert cloud.last_change is not None and {"h2", "h3"} <= cloud.last_change.hosts
