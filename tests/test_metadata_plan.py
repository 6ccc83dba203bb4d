"""Planning the metadata server and its DNAT from what the host has (no kernel needed)."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

from core.config import Settings
from core.linux.metadata import plan, spec, table
from core.linux.metadata.observe import ObservedMetadata, ObservedTable
from core.linux.metadata.operations import (
    CreateMetadataTable,
    DeleteMetadataRoute,
    DeleteMetadataTable,
    SetMetadataPort,
    SetMetadataRoute,
    StartMetadataServer,
    StopMetadataServer,
)
from core.linux.metadata.spec import Route
from core.linux.processes import Process

ROUTES = (Route("br100", "10.0.0.1"), Route("br101", "10.0.1.1"))


def _want(routes: tuple[Route, ...] = ROUTES, **settings: object) -> spec.DesiredMetadata:
    return spec.desired(
        routes, Settings().replace(**settings), Path("/state"), {"A": "1"}, "nethost"
    )


def _running(want: spec.DesiredMetadata, argv: tuple[str, ...] | None = None) -> Process:
    return Process(4242, 1, argv or want.argv, here=False)


def _as_it_should_be(want: spec.DesiredMetadata) -> ObservedMetadata:
    return ObservedMetadata(
        ipv4=ObservedTable(
            table=True,
            layout_ok=True,
            routes={r.bridge: (r.gateway, want.port) for r in want.routes},
            ports=frozenset({want.port}),
        ),
        servers=(_running(want),),
        answers=True,
    )


def test_nothing_to_do_when_the_host_has_it_all() -> None:
    want = _want()
    assert plan.plan(want, _as_it_should_be(want), nft_found=True) == []


def test_a_bare_host_gets_the_table_its_routes_and_a_server() -> None:
    want = _want()
    ops = plan.plan(want, ObservedMetadata(), nft_found=True)
    assert [op.describe() for op in ops] == [
        "start metadata server on port 8775",
        "create nftables table ip netcon_metadata (DNAT of 169.254.169.254:80 for guests)",
        "DNAT 169.254.169.254:80 from guests on br100 to 10.0.0.1:8775",
        "DNAT 169.254.169.254:80 from guests on br101 to 10.0.1.1:8775",
        "let only DNATed connections reach the metadata port 8775",
    ]
    script = table.table_text(ops)
    assert "dnat ip to iifname map @gateways" in script
    assert 'add element ip netcon_metadata gateways { "br100" : 10.0.0.1 . 8775 }' in script
    assert "delete element" not in script  # nothing to replace in a new table


def test_routes_follow_the_networks_served() -> None:
    want = _want((Route("br100", "10.0.0.9"), Route("br102", "10.0.2.1")))
    have = _as_it_should_be(_want())
    ops = plan.plan(want, have, nft_found=True)
    assert ops == [
        DeleteMetadataRoute("br101"),
        SetMetadataRoute("br100", "10.0.0.9", 8775, replaces=True),
        SetMetadataRoute("br102", "10.0.2.1", 8775),
    ]
    script = table.table_text(ops)
    assert script.index('delete element ip netcon_metadata gateways { "br100" }') < script.index(
        '"br100" : 10.0.0.9 . 8775'
    )


def test_a_dead_hung_duplicated_or_outdated_server_is_replaced() -> None:
    want = _want()
    good = _as_it_should_be(want)
    dead = plan.plan(want, replace(good, servers=(), answers=False), nft_found=True)
    assert [type(op) for op in dead] == [StartMetadataServer]
    hung = plan.plan(want, replace(good, answers=False), nft_found=True)
    assert [type(op) for op in hung] == [StopMetadataServer, StartMetadataServer]
    assert "does not answer" in hung[0].describe()
    two = replace(good, servers=(_running(want), Process(4343, 1, want.argv, here=False)))
    assert plan.plan(want, two, nft_found=True)[0] == StopMetadataServer(
        (4242, 4343), "2 servers run"
    )
    # Another domain for hostnames: a new command line, so a new server.
    outdated = plan.plan(_want(dhcp_domain="example.org"), good, nft_found=True)
    assert "its command line is out of date" in outdated[0].describe()
    # Started by another name of the same interpreter: still the same server.
    renamed = replace(good, servers=(_running(want, ("python3", *want.argv[1:])),))
    assert plan.plan(want, renamed, nft_found=True) == []


def test_another_port_moves_routes_and_guard() -> None:
    want = _want(metadata_port=8776)
    ops = plan.plan(want, _as_it_should_be(_want()), nft_found=True)
    assert SetMetadataPort(8775, add=False) in ops and SetMetadataPort(8776, add=True) in ops
    assert SetMetadataRoute("br100", "10.0.0.1", 8776, replaces=True) in ops
    assert isinstance(ops[0], StopMetadataServer) and isinstance(ops[1], StartMetadataServer)


def test_no_network_served_stops_the_server_and_deletes_the_table() -> None:
    have = _as_it_should_be(_want())
    ops = plan.plan(_want(()), have, nft_found=True)
    assert ops == [
        StopMetadataServer((4242,), "no network here needs it"),
        DeleteMetadataTable(),
    ]
    assert plan.plan(_want(()), ObservedMetadata(), nft_found=True) == []


def test_a_table_in_another_shape_is_made_again() -> None:
    want = _want()
    good = _as_it_should_be(want)
    have = replace(good, ipv4=replace(good.ipv4, layout_ok=False))
    ops = plan.plan(want, have, nft_found=True)
    assert ops[0] == CreateMetadataTable(True)
    assert len([op for op in ops if isinstance(op, SetMetadataRoute)]) == 2
