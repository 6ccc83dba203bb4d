"""Metadata over IPv6 and the multi-host segment filter, without a kernel: what the
plans do with what a host has, and who the server says is asking."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

from core.config import Settings
from core.linux import nfttable, segment6
from core.linux.ipv6_host import gateway_v6_of, link_local
from core.linux.metadata import plan, spec, table
from core.linux.metadata.observe import ObservedMetadata, ObservedTable
from core.linux.metadata.operations import (
    AddMetadataAddress6,
    CreateMetadataTable,
    DeleteMetadataAddress6,
    DeleteMetadataRoute,
    DeleteMetadataTable,
    SetMetadataPort,
    SetMetadataRoute,
    StopMetadataServer,
)
from core.linux.metadata.spec import IPV6, Route
from core.linux.processes import Process
from core.metadata.app import ec2_meta_data, openstack_network_data
from tests.support import make_service

ROUTES = (Route("br100", "10.0.1.1"), Route("br101", "10.0.2.1"))
ROUTES6 = (Route("br100", "2001:db8:1::1"), Route("br101", "2001:db8:2::1"))
WHOLE6 = ObservedTable(
    table=True,
    layout_ok=True,
    routes={"br100": ("2001:db8:1::1", 8775), "br101": ("2001:db8:2::1", 8775)},
    ports=frozenset({8775}),
)
STALE6 = ObservedTable(
    table=True,
    layout_ok=True,
    routes={"br100": ("2001:db8:1::1", 8775), "br102": ("2001:db8:3::1", 8775)},
    ports=frozenset({8775}),
)


def _want(routes6: tuple[Route, ...] = ROUTES6, port: int = 8775) -> spec.DesiredMetadata:
    settings = Settings().replace(metadata_port=port)
    return spec.desired(ROUTES, settings, Path("/state"), {}, None, routes6)


def _have(six: ObservedTable, carrying: frozenset[str] = frozenset()) -> ObservedMetadata:
    """A host whose server (listening on IPv6 too) and IPv4 table are as they should be."""
    want = spec.listening_v6(_want())
    four = {r.bridge: (r.gateway, want.port) for r in ROUTES}
    return ObservedMetadata(
        ipv4=ObservedTable(True, True, four, frozenset({want.port})),
        ipv6=six,
        servers=(Process(4242, 1, want.argv, here=False),),
        answers=True,
        carrying=carrying,
    )


def _plan(have: ObservedMetadata, **given: object) -> list[object]:
    want = given.pop("want", _want())
    return list(plan.plan(want, have, nft_found=True, **given))  # type: ignore[arg-type]


def test_a_host_without_it_gets_addresses_table_and_routes_then_nothing() -> None:
    assert _plan(_have(ObservedTable())) == [
        AddMetadataAddress6("br100"),
        AddMetadataAddress6("br101"),
        CreateMetadataTable(False, family=IPV6),
        SetMetadataRoute("br100", "2001:db8:1::1", 8775, family=IPV6),
        SetMetadataRoute("br101", "2001:db8:2::1", 8775, family=IPV6),
        SetMetadataPort(8775, add=True, family=IPV6),
    ]
    assert _plan(_have(WHOLE6, frozenset({"br100", "br101"}))) == []


def test_a_moved_gateway_or_port_is_set_again() -> None:
    moved = replace(WHOLE6, routes={**WHOLE6.routes, "br101": ("2001:db8:2::9", 8775)})
    carrying = frozenset({"br100", "br101"})
    assert _plan(_have(moved, carrying)) == [
        SetMetadataRoute("br101", "2001:db8:2::1", 8775, replaces=True, family=IPV6)
    ]
    # Another port: the routes and the guard move, in both families' tables.
    ops = _plan(_have(WHOLE6, carrying), want=_want(port=8776))
    for family in (spec.IPV4, IPV6):
        assert SetMetadataPort(8775, add=False, family=family) in ops
        assert SetMetadataPort(8776, add=True, family=family) in ops
    assert SetMetadataRoute("br100", "2001:db8:1::1", 8776, replaces=True, family=IPV6) in ops
    assert not any(isinstance(op, CreateMetadataTable) for op in ops)


def test_a_scoped_plan_touches_only_its_bridges_and_keeps_the_table() -> None:
    stale = _have(STALE6, frozenset({"br100", "br102"}))
    assert _plan(stale, bridges=frozenset({"br100"})) == []
    assert _plan(stale, bridges=frozenset({"br101", "br102"})) == [
        AddMetadataAddress6("br101"),
        DeleteMetadataAddress6("br102"),
        DeleteMetadataRoute("br102", family=IPV6),
        SetMetadataRoute("br101", "2001:db8:2::1", 8775, family=IPV6),
    ]
    # A scope with no dual-stack network keeps the others' table (and the IPv6 socket),
    # and drops it when its own were the last.
    none = _want(routes6=())
    assert plan.ipv6_wanted(none, STALE6, frozenset({"br100"}))
    assert not plan.ipv6_wanted(none, STALE6, frozenset({"br100", "br102"}))
    assert not plan.ipv6_wanted(none, STALE6)


def test_no_server_here_takes_everything_away() -> None:
    gone = spec.desired((), Settings(), Path("/state"), {}, None, ROUTES6)
    assert _plan(_have(WHOLE6, frozenset({"br100", "br101"})), want=gone) == [
        StopMetadataServer((4242,), "no network here needs it"),
        DeleteMetadataAddress6("br100"),
        DeleteMetadataAddress6("br101"),
        DeleteMetadataTable(),
        DeleteMetadataTable(family=IPV6),
    ]


def test_the_table_drops_adverts_from_the_metadata_address() -> None:
    text = table.table_text([CreateMetadataTable(False, family=IPV6)])
    assert "ip6 saddr fe80::a9fe:a9fe icmpv6 type nd-router-advert drop" in text
    assert "dnat ip6 to iifname map @gateways" in text
    assert 'tcp dport @server_port iifname != "lo" drop' in text
    # The IPv4 table's layout, and an output chain with the advert guard.
    four = table.table_text([CreateMetadataTable(False)])
    assert text.count("\n") == four.count("\n") + 2


def test_a_table_of_the_earlier_layout_is_made_again() -> None:
    """An IPv6 table that guarded its port in its rules (no set of ports) is not the
    layout written now: the plan makes it again, whole, with its routes."""

    def rule(chain: str) -> dict[str, object]:
        return {"rule": {"chain": chain, "expr": []}}

    earlier = [
        {"table": {"name": spec.TABLE6}},
        {"map": {"name": "gateways", "elem": [["br100", {"concat": ["2001:db8:1::1", 8775]}]]}},
        *({"chain": {"name": name}} for name in ("prerouting", "input", "output")),
        rule("prerouting"),
        rule("input"),
        rule("input"),
        rule("output"),
    ]
    found = nfttable.parse(IPV6.table, earlier)
    assert found.present and not found.layout_ok
    assert nfttable.parse(IPV6.table, [*earlier, {"set": {"name": "server_port"}}]).layout_ok
    have = _have(ObservedTable(True, False, {"br100": ("2001:db8:1::1", 8775)}))
    assert _plan(have, want=_want(routes6=ROUTES6[:1]), bridges=frozenset({"br100"}))[:2] == [
        AddMetadataAddress6("br100"),
        CreateMetadataTable(True, family=IPV6),
    ]


def test_the_segment_filter_is_made_once_and_kept_by_scoped_plans() -> None:
    none = nfttable.ObservedNames()
    made = segment6.plan(frozenset({"vx116"}), none, nft_found=True)
    assert made == [segment6.CreateSegmentTable6(False), segment6.SetSegment6("vx116", add=True)]
    text = segment6.table_text(made)
    assert text.count(" drop\n") == segment6.RULES
    assert "oifname @segments ether type ip6 meta l4proto udp udp sport 547 drop" in text
    have = nfttable.ObservedNames(True, True, frozenset({"vx116", "vx117"}))
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
