"""`network create` as nova-network did it, and the checks it skipped."""

from __future__ import annotations

from pathlib import Path

import pytest

from core.errors import Conflict, InvalidInput, NotFound
from core.service import NetconService
from tests.support import make_service


@pytest.fixture
def service(tmp_path: Path) -> NetconService:
    return make_service(tmp_path)


def test_vlan_create_cuts_range_and_counts_ids_up(service: NetconService) -> None:
    made = service.create_networks("10.0.0.0/16", 4, 256, 100, 1000)
    assert [n.cidr for n in made] == [f"10.0.{i}.0/24" for i in range(4)]
    assert [n.vlan for n in made] == [100, 101, 102, 103]
    assert [n.vpn_public_port for n in made] == [1000, 1001, 1002, 1003]
    assert [n.bridge for n in made] == ["br100", "br101", "br102", "br103"]
    first = made[0]
    assert (first.gateway, first.broadcast, first.netmask) == (
        "10.0.0.1",
        "10.0.0.255",
        "255.255.255.0",
    )
    assert first.vpn_private_address == "10.0.0.2"
    assert first.dhcp_start == "10.0.0.3"
    # network, gateway, VPN at the bottom; broadcast at the top.
    assert (first.size, first.reserved, first.free) == (256, 4, 252)


def test_reserved_addresses_are_exactly_the_structural_ones(service: NetconService) -> None:
    service.create_networks("10.0.0.0/29", 1, 8, 100, 1000)
    page = service.list_fixed_ips(network="10.0.0.0/29")
    reserved = [r.address for r in page.rows if r.reserved]
    assert reserved == ["10.0.0.0", "10.0.0.1", "10.0.0.2", "10.0.0.7"]


def test_vpn_clients_are_reserved_at_the_top(tmp_path: Path) -> None:
    service = make_service(tmp_path, cnt_vpn_clients=3)
    service.create_networks("10.0.0.0/28", 1, 16, 100, 1000)
    reserved = [r.address for r in service.list_fixed_ips().rows if r.reserved]
    assert reserved[-4:] == ["10.0.0.12", "10.0.0.13", "10.0.0.14", "10.0.0.15"]


def test_flat_networks_reserve_network_gateway_broadcast(service: NetconService) -> None:
    (net,) = service.create_networks("192.168.5.0/24", manager="flat", bridge="brflat")
    assert net.vlan is None and net.bridge == "brflat" and net.reserved == 3
    assert net.dns1 == "8.8.4.4"


def test_used_subnets_are_skipped_like_nova(service: NetconService) -> None:
    service.create_networks("10.0.1.0/24", 1, 256, 200, 2000)
    made = service.create_networks("10.0.0.0/22", 3, 256)
    assert [n.cidr for n in made] == ["10.0.0.0/24", "10.0.2.0/24", "10.0.3.0/24"]
    # Defaulted ids skip the ones taken.
    assert [n.vlan for n in made] == [100, 101, 102]


def test_defaults_come_from_settings(tmp_path: Path) -> None:
    service = make_service(tmp_path, fixed_range="172.16.0.0/20", num_networks=2, network_size=64)
    made = service.create_networks()
    assert [n.cidr for n in made] == ["172.16.0.0/26", "172.16.0.64/26"]


@pytest.mark.parametrize(
    ("args", "kwargs", "field"),
    [
        (("10.0.0.0/33",), {}, "fixed_range"),
        (("10.0.0.1/24",), {}, "fixed_range"),
        (("fe80::/64",), {}, "fixed_range"),
        (("10.0.0.0/16", 1, 250), {}, "network_size"),
        (("10.0.0.0/16", 1, 4), {}, "network_size"),
        (("10.0.0.0/24", 2, 256), {}, "num_networks"),
        (("10.0.0.0/16", 0), {}, "num_networks"),
        (("10.0.0.0/16", 2, 256, 4094), {}, "vlan_start"),
        (("10.0.0.0/16", 1, 256, 0), {}, "vlan_start"),
        (("10.0.0.0/16", 1, 256, 100, 70000), {}, "vpn_start"),
        (("10.0.0.0/16",), {"label": "bad label"}, "label"),
        (("10.0.0.0/16",), {"label": "x\ny"}, "label"),
        (("10.0.0.0/16",), {"manager": "nova"}, "manager"),
        (("10.0.0.0/24",), {"manager": "flat", "bridge": "br$0"}, "bridge"),
        (("10.0.0.0/24",), {"manager": "flat", "bridge": "a-very-long-bridge"}, "bridge"),
        (("10.0.0.0/16",), {"segmentation": "gre"}, "segmentation"),
        (("10.0.0.0/16",), {"dns": "8.8.8"}, "dns"),
        (("10.0.0.0/16",), {"bridge": "br7"}, "bridge"),
    ],
)
def test_bad_input_names_the_field(
    service: NetconService, args: tuple[object, ...], kwargs: dict[str, str], field: str
) -> None:
    with pytest.raises(InvalidInput) as caught:
        service.create_networks(*args, **kwargs)  # type: ignore[arg-type]
    assert caught.value.field == field
    assert "\n" not in str(caught.value)
    assert service.list_networks() == []


def test_overlaps_and_taken_ids_are_refused(service: NetconService) -> None:
    service.create_networks("10.0.0.0/24", 1, 256, 100, 1000)
    with pytest.raises(Conflict, match="VLAN 100 is taken"):
        service.create_networks("10.1.0.0/24", 1, 256, 100, 1100)
    with pytest.raises(Conflict, match="VPN port 1000 is taken"):
        service.create_networks("10.1.0.0/24", 1, 256, 300, 1000)
    with pytest.raises(Conflict, match="free /24"):
        service.create_networks("10.0.0.0/24", 1, 256)
    with pytest.raises(Conflict, match="free /25"):
        service.create_networks("10.0.0.128/25", 1, 128)
    service.create_floating_range("nethost1", "10.5.0.0/24")
    with pytest.raises(Conflict, match="fixed_range"):
        service.create_networks("10.5.0.0/24", 1, 256)
    assert [n.cidr for n in service.list_networks()] == ["10.0.0.0/24"]


def test_vxlan_segments_may_pass_4094(service: NetconService) -> None:
    (net,) = service.create_networks("10.0.0.0/24", 1, 256, 5000, segmentation="vxlan")
    assert (net.vlan, net.segmentation, net.bridge) == (5000, "vxlan", "br5000")


def test_delete_refuses_a_network_in_use(service: NetconService) -> None:
    service.create_networks("10.0.0.0/24", 1, 256, 100, 1000)
    service.create_project("alpha")
    service.launch_instance("alpha", "vm1")
    with pytest.raises(Conflict, match="in use"):
        service.delete_network("10.0.0.0/24")
    service.terminate_instance("vm1")
    gone = service.delete_network("10.0.0.0/24")
    assert gone.cidr == "10.0.0.0/24"
    assert service.list_networks() == []
    assert service.list_fixed_ips().total == 0
    with pytest.raises(NotFound):
        service.get_network("10.0.0.0/24")


def test_reserve_and_unreserve(service: NetconService) -> None:
    service.create_networks("10.0.0.0/29", 1, 8, 100, 1000, manager="vlan")
    service.reserve_fixed_ip("10.0.0.3")
    with pytest.raises(Conflict, match="already reserved"):
        service.reserve_fixed_ip("10.0.0.3")
    with pytest.raises(Conflict, match="gateway"):
        service.unreserve_fixed_ip("10.0.0.1")
    service.unreserve_fixed_ip("10.0.0.3")
    with pytest.raises(NotFound):
        service.reserve_fixed_ip("10.9.9.9")
    with pytest.raises(InvalidInput):
        service.reserve_fixed_ip("10.0.0.300")


def test_every_change_is_audited(service: NetconService) -> None:
    service.create_networks("10.0.0.0/24", 1, 256, 100, 1000)
    service.reserve_fixed_ip("10.0.0.9")
    events = service.list_audit()
    assert [e.action for e in events] == ["fixed.reserve", "network.create"]
    assert events[0].actor == "tester" and events[0].target == "10.0.0.9"
    with pytest.raises(Conflict):
        service.reserve_fixed_ip("10.0.0.9")
    assert len(service.list_audit()) == 2


def test_modify_segmentation_keeps_the_id_while_nothing_is_plugged(
    service: NetconService,
) -> None:
    service.create_networks("10.0.0.0/16", 2, 256, 100, 1000, segmentation="vlan")
    changed = service.modify_network("10.0.1.0/24", segmentation="vxlan")
    assert (changed.segmentation, changed.vlan) == ("vxlan", 101)
    assert changed.mtu == 1450  # the default follows the segment's overhead
    assert service.last_change is not None and service.last_change.network_ids == {changed.id}
    back = service.modify_network("10.0.1.0/24", segmentation="vlan")
    assert (back.segmentation, back.mtu) == ("vlan", 1500)
    # An MTU of its own that a VXLAN segment cannot carry must be lowered with it.
    service.modify_network("10.0.1.0/24", mtu=1500)
    with pytest.raises(Conflict) as refused:
        service.modify_network("10.0.1.0/24", segmentation="vxlan")
    assert refused.value.field == "segmentation" and "give --mtu too" in str(refused.value)
    both = service.modify_network("10.0.1.0/24", segmentation="vxlan", mtu=1400)
    assert (both.segmentation, both.mtu) == ("vxlan", 1400)
    service.create_project("alpha")
    service.launch_instance("alpha", "vm1")  # plugged into 10.0.0.0/24
    with pytest.raises(Conflict, match="still has 1 instance"):
        service.modify_network("10.0.0.0/24", segmentation="vxlan")


def test_a_vlan_id_above_4094_stays_vxlan(service: NetconService) -> None:
    (network,) = service.create_networks("10.9.0.0/24", 1, 256, 5000, 1000, segmentation="vxlan")
    with pytest.raises(Conflict, match="above 4094"):
        service.modify_network(network.cidr, segmentation="vlan")
