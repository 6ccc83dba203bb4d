"""Metadata over IPv6 and the multi-host segment filter, without a kernel: what the
plans do with what a host has, and who the server says is asking."""

from __future__ import annotations

from pathlib import Path

from core.linux import metadata6, segment6
from core.linux.ipv6_host import gateway_v6_of, link_local
from core.linux.metadata6 import (
    AddMetadataAddress6,
    CreateMetadataTable6,
    DeleteMetadataAddress6,
    DeleteMetadataRoute6,
    DeleteMetadataTable6,
    ObservedMetadata6,
    Route6,
    SetMetadataRoute6,
)
from core.metadata.app import ec2_meta_data, openstack_network_data
from tests.support import make_service

ROUTES = (Route6("br100", "2001:db8:1::1"), Route6("br101", "2001:db8:2::1"))
WHOLE = ObservedMetadata6(
    carrying=frozenset({"br100", "br101"}),
    table=True,
    routes={"br100": ("2001:db8:1::1", 8775), "br101": ("2001:db8:2::1", 8775)},
    guarded_port=8775,
)


def _plan(have: ObservedMetadata6, **given: object) -> list[object]:
    options: dict[str, object] = {"serving": True, "port": 8775, "nft_found": True}
    options.update(given)
    return list(metadata6.plan(ROUTES, have, **options))  # type: ignore[arg-type]


def test_a_host_without_it_gets_addresses_table_and_routes_then_nothing() -> None:
    assert _plan(ObservedMetadata6()) == [
        AddMetadataAddress6("br100"),
        AddMetadataAddress6("br101"),
        CreateMetadataTable6(False, 8775),
        SetMetadataRoute6("br100", "2001:db8:1::1", 8775),
        SetMetadataRoute6("br101", "2001:db8:2::1", 8775),
    ]
    assert _plan(WHOLE) == []


def test_a_moved_gateway_or_port_is_set_again() -> None:
    moved = ObservedMetadata6(
        carrying=WHOLE.carrying,
        table=True,
        routes={**WHOLE.routes, "br101": ("2001:db8:2::9", 8775)},
        guarded_port=8775,
    )
    assert _plan(moved) == [SetMetadataRoute6("br101", "2001:db8:2::1", 8775, replaces=True)]
    # Another guarded port: the table is made again, with every route.
    assert _plan(WHOLE, port=8776)[0] == CreateMetadataTable6(True, 8776)


def test_a_scoped_plan_touches_only_its_bridges_and_keeps_the_table() -> None:
    stale = ObservedMetadata6(
        carrying=frozenset({"br100", "br102"}),
        table=True,
        routes={"br100": ("2001:db8:1::1", 8775), "br102": ("2001:db8:3::1", 8775)},
        guarded_port=8775,
    )
    assert _plan(stale, bridges=frozenset({"br100"})) == []
    assert _plan(stale, bridges=frozenset({"br101", "br102"})) == [
        AddMetadataAddress6("br101"),
        DeleteMetadataAddress6("br102"),
        DeleteMetadataRoute6("br102"),
        SetMetadataRoute6("br101", "2001:db8:2::1", 8775),
    ]
    # A scope with no dual-stack network keeps the others' table (and the IPv6 socket),
    # and drops it when its own were the last.
    assert metadata6.table_wanted((), stale, serving=True, bridges=frozenset({"br100"}))
    both = frozenset({"br100", "br102"})
    assert not metadata6.table_wanted((), stale, serving=True, bridges=both)
    assert not metadata6.table_wanted((), stale, serving=True)


def test_no_server_here_takes_everything_away() -> None:
    assert _plan(WHOLE, serving=False) == [
        DeleteMetadataAddress6("br100"),
        DeleteMetadataAddress6("br101"),
        DeleteMetadataTable6(),
    ]


def test_the_table_drops_adverts_from_the_metadata_address() -> None:
    text = metadata6.table_text([CreateMetadataTable6(False, 8775)])
    assert "ip6 saddr fe80::a9fe:a9fe icmpv6 type nd-router-advert drop" in text
    assert "dnat ip6 to iifname map @gateways" in text
    assert 'tcp dport 8775 iifname != "lo" drop' in text


def test_the_segment_filter_is_made_once_and_kept_by_scoped_plans() -> None:
    none = segment6.ObservedSegments6()
    made = segment6.plan(frozenset({"vx116"}), none, nft_found=True)
    assert made == [segment6.CreateSegmentTable6(False), segment6.SetSegment6("vx116", add=True)]
    text = segment6.table_text(made)
    assert text.count(" drop\n") == segment6.RULES
    assert "oifname @segments ether type ip6 meta l4proto udp udp sport 547 drop" in text
    have = segment6.ObservedSegments6(True, True, frozenset({"vx116", "vx117"}))
    assert segment6.plan(frozenset({"vx116"}), have, nft_found=True) == [
        segment6.SetSegment6("vx117", add=False)
    ]
    assert segment6.plan(frozenset({"vx116"}), have, nft_found=True, scoped=True) == []
    assert segment6.plan(frozenset(), have, nft_found=True, scoped=True) == []
    assert segment6.plan(frozenset(), have, nft_found=True) == [segment6.DeleteSegmentTable6()]


def test_a_multi_host_gateway_is_at_the_offset_of_its_ipv4_one() -> None:
    assert str(gateway_v6_of("2001:db8:16::/64", "10.0.16.0/24", "10.0.16.6")) == "2001:db8:16::6"
    assert str(gateway_v6_of("2001:db8:16::/64", "10.0.16.0/24", "10.0.16.1")) == "2001:db8:16::1"


def test_the_server_names_the_instance_by_either_of_its_ipv6_sources(tmp_path: Path) -> None:
    service = make_service(tmp_path)
    service.create_project("alpha")
    (network,) = service.create_networks("10.24.0.0/24", 1, 256, None, None, "2001:db8:24::/64")
    web = service.launch_instance("alpha", "web1").addresses[0]
    db = service.launch_instance("alpha", "db1").addresses[0]
    assert web.address_v6 is not None and db.address_v6 is not None
    via = "2001:db8:24::1"
    for source in (link_local(web.mac), f"{link_local(web.mac)}%br100", web.address_v6):
        view = service.instance_metadata_v6(source, via)
        assert view is not None and (view.name, view.address) == ("web1", web.address), source
    view = service.instance_metadata_v6(link_local(db.mac), via)
    assert view is not None and view.name == "db1"
    # Both families, as cloud-init reads them.
    assert ec2_meta_data(view)["ipv6"] == db.address_v6
    ipv4, ipv6 = openstack_network_data(view)["networks"]
    assert (ipv4["type"], ipv4["ip_address"]) == ("ipv4", db.address)
    assert (ipv6["type"], ipv6["ip_address"], ipv6["network_id"]) == (
        "ipv6_slaac",
        db.address_v6,
        "2001:db8:24::/64",
    )
    assert ipv6["routes"] == [{"network": "::", "netmask": "::", "gateway": via}]
    # Arrived at another network's /64, or from an address no instance has: nobody.
    assert service.instance_metadata_v6(link_local(web.mac), "2001:db8:99::1") is None
    assert service.instance_metadata_v6("fe80::1", via) is None
    assert service.instance_metadata_v6("2001:db8:24::99", via) is None
    assert service.instance_metadata_v6("not an address", via) is None
    assert network.gateway_v6 == via
