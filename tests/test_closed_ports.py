"""Fail-closed bridge ports without a kernel: which ports are netcon's own, which sets a
plan changes element by element, when the bridge table is made or goes, and the ports
`host plan` names."""

from __future__ import annotations

from pathlib import Path

import pytest

from core.config import load_settings
from core.errors import InvalidInput
from core.linux import closedports
from core.linux.closedports import (
    ClosePort,
    HairpinUplink,
    LeasePort,
    OpenPort,
    UnhairpinUplink,
)
from core.linux.desired import DesiredHost, DesiredNetwork, Segment
from core.linux.netlink import Link
from core.linux.observed import OWNER_ALIAS, ObservedHost
from core.linux.scope import Reach
from core.linux.secgroups.operations import DeleteFilterTable
from core.linux.secgroups.plan import plan as filter_plan
from core.linux.secgroups.render import commands
from core.linux.secgroups.spec import DesiredFilter, FilteredPort
from core.linux.secgroups.state import FilterState, TableState, parse_table
from core.linux.secgroups.whole import CreateWholeFilter
from core.linux.secgroups.whole import text as whole_text
from core.managers.capabilities import capabilities


def _network(
    id: int,
    bridge: str,
    manager: str,
    *,
    served: bool,
    owns: bool = True,
    uplink: str | None = None,
) -> DesiredNetwork:
    segment = Segment("vxlan", id, "und0") if manager == "vlan" else None
    return DesiredNetwork(
        id=id,
        cidr=f"10.{id}.0.0/24",
        manager=manager,
        label=bridge,
        project=None,
        bridge=bridge,
        owns_bridge=owns,
        bridge_interface=uplink,
        segment=segment,
        gateway=f"10.{id}.0.1" if served else None,
        prefixlen=24,
        broadcast=f"10.{id}.0.255",
        dhcp=None,
        isolated=False,
        serves_dhcp=capabilities(manager).serves_dhcp,
        runs_vpn=capabilities(manager).runs_vpn,
    )


PORT = FilteredPort("tapfa163e000001", "web1", "fa:16:3e:00:00:01", "10.100.0.3", ())


def _desired(reach: Reach | None = None) -> DesiredHost:
    return DesiredHost(
        host="h1",
        public_interface="pub0",
        vxlan_group="239.1.1.1",
        vxlan_port=4789,
        networks=(
            _network(100, "br100", "vlan", served=True),  # served here: segment and VPN tap
            _network(101, "br101", "vlan", served=False),  # a compute host's: segment only
            _network(102, "brdhcp", "flatdhcp", served=True, uplink="eth2"),
            _network(103, "brflat", "flat", served=False, owns=False, uplink="eth3"),
        ),
        security=DesiredFilter(ports=(PORT,)),
        reach=reach,
    )


def _link(index: int, name: str, kind: str | None = None, master: int = 0) -> Link:
    alias = OWNER_ALIAS if name.startswith(("br1", "brdhcp", "vx")) else None
    return Link(index, name, kind, master, True, alias, None, 0, 1500)


LINKS = [
    _link(10, "br100", "bridge"),
    _link(11, "vx100", "vxlan", 10),
    _link(12, "tapvpn100", "tun", 10),
    _link(13, "tapfa163e000001", "veth", 10),  # web1's port
    _link(14, "tapfa163e0000ff", "veth", 10),  # a MAC no row holds
    _link(15, "trust0", "veth", 10),
    _link(20, "brflat", "bridge"),  # the admin's Flat bridge
    _link(21, "eth3", "veth", 20),
    _link(22, "guestflat", "veth", 20),
    _link(30, "docker0", "bridge"),  # not netcon's at all
    _link(31, "vethc0ffee", "veth", 30),
]
OBSERVED = ObservedHost(
    links={link.name: link for link in LINKS}, addresses=(), forwarding=True, nft=None
)


def test_netcons_own_ports_are_its_segments_uplinks_and_vpn_taps() -> None:
    assert closedports.own_ports(_desired()) == {"vx100", "tapvpn100", "vx101", "eth2"}
    # Every port of a bridge netcon does not own passes (the kernel cannot tell bridges
    # apart here); the Flat bridge is the admin's.
    assert closedports.foreign_ports(_desired(), OBSERVED) == {"eth3", "guestflat", "vethc0ffee"}


def test_a_full_plan_sets_each_open_set_element_by_element() -> None:
    opened = closedports.wanted(_desired(), OBSERVED, ("trust0",))
    have = TableState(
        exists=True,
        sets={
            "own_ports": frozenset({"vx100", "vx99"}),
            "trusted_ports": frozenset({"old0"}),
            "foreign_ports": frozenset({"eth3"}),
            "hairpin_uplinks": frozenset({"vx100 . vx100", "vx99 . vx99"}),
        },
    )
    state = FilterState(have, TableState(exists=True))
    ops = closedports.plan(opened, state, [])
    assert ops == [
        ClosePort("own_ports", "vx99"),
        OpenPort("own_ports", "eth2"),
        OpenPort("own_ports", "tapvpn100"),
        OpenPort("own_ports", "vx101"),
        ClosePort("trusted_ports", "old0"),
        OpenPort("trusted_ports", "trust0"),
        OpenPort("foreign_ports", "guestflat"),
        OpenPort("foreign_ports", "vethc0ffee"),
        # The uplinks of the bridges this host routes for (not a compute host's vx101).
        UnhairpinUplink("vx99"),
        HairpinUplink("eth2"),
    ]
    assert ops[0].describe() == "close port vx99 (no longer netcon's own port)"
    # Elements of their sets, in one batch: never a table rewritten.
    batch = commands(ops)
    assert {next(iter(c)) for c in batch} == {"add", "delete"}
    assert all("element" in next(iter(c.values())) for c in batch)


def test_a_scoped_plan_closes_only_what_its_networks_owned() -> None:
    reach = Reach(links=frozenset({"br99", "vx99"}), bridges=frozenset({"br99"}))
    scoped = DesiredHost(
        host="h1",
        public_interface="pub0",
        vxlan_group="239.1.1.1",
        vxlan_port=4789,
        networks=(),
        security=DesiredFilter(ports=(PORT,)),
        reach=reach,
    )
    opened = closedports.wanted(scoped, OBSERVED, ())
    assert opened.foreign is None and opened.bridges_here is None
    have = TableState(
        exists=True,
        sets={"own_ports": frozenset({"vx99", "tapvpn99", "vx100"}), "foreign_ports": frozenset()},
    )
    ops = closedports.plan(opened, FilterState(have, TableState(exists=True)), [])
    assert ops == [ClosePort("own_ports", "tapvpn99"), ClosePort("own_ports", "vx99")]


def test_the_bridge_table_is_made_for_bridges_alone_and_goes_with_them() -> None:
    empty = FilterState(TableState(), TableState())
    # A network host serving a network with no instance here yet: closed all the same.
    (made,) = filter_plan(DesiredFilter(), empty, [], bridges_here=True)
    assert isinstance(made, CreateWholeFilter)
    assert "table bridge netcon {\n" in whole_text(made.desired)
    # And its open sets are filled in the same batch, in the table it makes.
    assert closedports.plan(closedports.wanted(_desired(), OBSERVED, ("trust0",)), empty, [made])
    # No bridge and no instance port of netcon's left (a full plan knows): it goes.
    there = FilterState(TableState(exists=True), TableState(exists=True))
    assert DeleteFilterTable("bridge", "netcon") in filter_plan(
        DesiredFilter(), there, [], bridges_here=False
    )
    # A scoped plan does not know the rest of the host: it leaves the table.
    kept = filter_plan(DesiredFilter(), there, [], bridges_here=None)
    assert not [op for op in kept if isinstance(op, DeleteFilterTable)]
    # Nothing here and no table: nothing made.
    assert filter_plan(DesiredFilter(), empty, [], bridges_here=False) == []


def test_host_plan_names_the_ports_that_pass_nothing() -> None:
    opened = closedports.wanted(_desired(), OBSERVED, ("trust0",))
    said = closedports.closed_port_warnings(_desired(), OBSERVED, opened)
    assert said == [
        "port tapfa163e0000ff on br100 passes no frame: it is no current instance's port on "
        "this host (tap + MAC), nor netcon's own, nor in trusted_ports; unplug it, or name it "
        "in trusted_ports"
    ]


def test_trusted_ports_are_checked_when_read(tmp_path: Path) -> None:
    config = tmp_path / "netcon.toml"
    config.write_text('trusted_ports = ["uplink0", "bad name"]\n')
    with pytest.raises(InvalidInput, match="trusted_ports: 'bad name' must be an interface"):
        load_settings(paths=[config])
    config.write_text('trusted_ports = "uplink0"\n')
    with pytest.raises(InvalidInput, match="trusted_ports: must be list or tuple"):
        load_settings(paths=[config])
    config.write_text('trusted_ports = ["uplink0"]\n')
    assert load_settings(paths=[config]).trusted_ports == ("uplink0",)


def test_a_fenced_hosts_vpn_tap_passes_only_as_long_as_its_lease() -> None:
    opened = closedports.wanted(_desired(), OBSERVED, (), leased=True)
    assert opened.leased == {"tapvpn100"}
    tables = TableState(exists=True)
    permanent = TableState(
        exists=True, sets={"own_ports": frozenset({"vx100", "vx101", "eth2", "tapvpn100"})}
    )
    ops = closedports.plan(opened, FilterState(permanent, tables), [])
    # A permanent element becomes a leased one: taken out and put back, in one batch.
    assert ops[:2] == [ClosePort("own_ports", "tapvpn100"), LeasePort("tapvpn100")]
    leased = TableState(
        exists=True,
        sets=permanent.sets,
        expiring={"own_ports": frozenset({"tapvpn100"})},
    )
    assert [
        op
        for op in closedports.plan(opened, FilterState(leased, tables), [])
        if getattr(op, "port", "") == "tapvpn100"
    ] == []
    # The executor gives the lifetime; the element carries it as its timeout.
    batch = commands([LeasePort("tapvpn100", 42)])
    assert batch == [
        {
            "add": {
                "element": {
                    "family": "bridge",
                    "table": "netcon",
                    "name": "own_ports",
                    "elem": [{"elem": {"val": "tapvpn100", "timeout": 42}}],
                }
            }
        }
    ]
    # A removal makes sure of the element first: a timeout may have taken it already.
    verbs = [next(iter(c)) for c in commands([ClosePort("own_ports", "tapvpn100")])]
    assert verbs == ["add", "delete"]


def test_timed_elements_are_read_back_from_nft() -> None:
    listing = [
        {
            "set": {
                "family": "bridge",
                "name": "own_ports",
                "table": "netcon",
                "type": "ifname",
                "flags": ["timeout"],
                "elem": ["vx100", {"elem": {"val": "tapvpn100", "timeout": 6, "expires": 4}}],
            }
        }
    ]
    state = parse_table(listing)
    assert state.sets["own_ports"] == {"vx100", "tapvpn100"}
    assert state.expiring["own_ports"] == {"tapvpn100"}
    assert state.timed == {"own_ports"}


def test_an_uplink_goes_into_hairpin_mode_only_behind_its_filter_element(tmp_path: Path) -> None:
    """Hairpin mode on an uplink reflects every flooded frame unless the bridge table
    lets back out of it only what the host NATed: a plan that cannot read the table
    leaves the uplinks as they are; with the table, element and mode go
    together, and a compute host's uplink is never hairpinned."""
    from core.linux.operations import SetUplinkHairpin
    from core.linux.planner import PlanContext
    from core.linux.planner import plan as host_plan

    context = PlanContext(tmp_path, None, "dnsmasq", "nft")
    # The underlay and the flat uplink are there too: no network is held back.
    links = {**OBSERVED.links, "und0": _link(40, "und0", "veth"), "eth2": _link(41, "eth2")}
    unread = FilterState(TableState(), TableState(), readable=False)
    without = host_plan(
        _desired(),
        ObservedHost(links=links, addresses=(), forwarding=True, nft=None, security=unread),
        context,
    )
    assert without.problems == ()
    assert not [op for op in without.operations if isinstance(op, SetUplinkHairpin)]
    table = FilterState(TableState(exists=True), TableState(exists=True))
    observed = ObservedHost(links=links, addresses=(), forwarding=True, nft=None, security=table)
    planned = host_plan(_desired(), observed, context).operations
    assert [op.name for op in planned if isinstance(op, SetUplinkHairpin)] == ["vx100", "eth2"]
    assert [op.port for op in planned if isinstance(op, HairpinUplink)] == ["eth2", "vx100"]
