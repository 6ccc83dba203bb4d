"""A network held back gets none of its operations and loses nothing it has, in the
security-group filter and the open-port sets as in its links: planned without a kernel."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

from core.linux.closedports import ClosePort, HairpinUplink, OpenPort, UnhairpinUplink
from core.linux.desired import DesiredHost
from core.linux.netlink import Address
from core.linux.observed import ObservedHost
from core.linux.operations import DeleteAddress, DeleteLink, Operation, Plan
from core.linux.planner import PlanContext
from core.linux.planner import plan as host_plan
from core.linux.secgroups import tables as sg
from core.linux.secgroups.operations import (
    AddDhcpServer,
    AddPortFilter,
    DeleteFilterTable,
    RemoveDhcpServer,
    RemovePortFilter,
)
from core.linux.secgroups.spec import DesiredFilter, FilteredPort
from core.linux.secgroups.state import FilterState, TableState
from core.linux.secgroups.whole import CreateWholeFilter
from tests.test_closed_ports import OBSERVED, _desired, _link

# web1 on br100 (VXLAN over und0), web2 on brdhcp (uplink eth2).
WEB1 = FilteredPort("tapfa163e000001", "web1", "fa:16:3e:00:00:01", "10.100.0.3", ())
WEB2 = FilteredPort("tapfa163e000002", "web2", "fa:16:3e:00:00:02", "10.102.0.3", ())
# Every link of br100's and br101's but their underlay: with it, nothing is held back.
UNDERLAY = _link(40, "und0", "veth")
LINKS = {
    **OBSERVED.links,
    "eth2": _link(41, "eth2"),
    "tapfa163e000002": _link(42, "tapfa163e000002"),
}


def _with_ports() -> DesiredHost:
    desired = _desired()
    ports = {100: (WEB1.name,), 102: (WEB2.name,)}
    return replace(
        desired,
        networks=tuple(replace(n, ports=ports.get(n.id, ())) for n in desired.networks),
        security=DesiredFilter(ports=(WEB1, WEB2), dhcp_servers=("10.100.0.1", "10.102.0.1")),
    )


def _laid_out(table: sg.Table, sets: dict[str, frozenset[str]]) -> TableState:
    """A table as this netcon lays it out, holding ``sets``."""
    types = dict(sg.FIXED_SETS[table])
    if table == sg.GROUPS:
        types.update({name: ((kind,), False) for name, kind in sg.INSTANCE_MAPS.items()})
    fixed = sg.FIXED_CHAINS[table]
    return TableState(
        exists=True,
        sets=sets,
        chains={
            name: tuple((c, i) for i, (c, _) in enumerate(rules))
            for name, (_, rules) in fixed.items()
        },
        hooks={name: hook for name, (hook, _) in fixed.items()},
        types=types,
        timed=sg.TIMED_SETS.get(table, frozenset()),
    )


def _plan(
    tmp_path: Path, state: FilterState, *, underlay: bool, addresses: tuple[Address, ...] = ()
) -> Plan:
    links = {**LINKS, "und0": UNDERLAY} if underlay else LINKS
    observed = ObservedHost(
        links=links, addresses=addresses, forwarding=True, nft=None, security=state
    )
    return host_plan(_with_ports(), observed, PlanContext(tmp_path, None, "dnsmasq", "nft"))


def _touching_br100(ops: tuple[Operation, ...]) -> list[Operation]:
    """What of the plan's filter and open sets concerns br100 or br101."""
    return [
        op
        for op in ops
        if (isinstance(op, AddPortFilter | RemovePortFilter) and op.port == WEB1.name)
        or (isinstance(op, AddDhcpServer | RemoveDhcpServer) and op.address == "10.100.0.1")
        or (
            isinstance(op, OpenPort | ClosePort | HairpinUplink | UnhairpinUplink)
            and op.port in {"vx100", "tapvpn100", "vx101"}
        )
    ]


def test_a_held_network_gets_no_filter_element_nor_open_port(tmp_path: Path) -> None:
    empty = FilterState(_laid_out(sg.BRIDGE, {}), _laid_out(sg.GROUPS, {}))
    whole = _plan(tmp_path, empty, underlay=True)
    assert whole.held == frozenset()
    assert len(_touching_br100(whole.operations)) == 6  # port, DHCP server, 3 open, hairpin

    held = _plan(tmp_path, empty, underlay=False)
    assert held.held == {"br100", "br101"}
    assert _touching_br100(held.operations) == []
    # The network brought in gets its own all the same.
    assert [op.port for op in held.operations if isinstance(op, AddPortFilter)] == [WEB2.name]
    assert [op.address for op in held.operations if isinstance(op, AddDhcpServer)] == ["10.102.0.1"]
    assert OpenPort("own_ports", "eth2") in held.operations
    # The ports of a bridge netcon holds back are no ports of its own to warn about.
    assert not [w for w in held.warnings if "on br100" in w]


def test_a_first_filter_apply_writes_nothing_of_a_held_network(tmp_path: Path) -> None:
    held = _plan(tmp_path, FilterState(TableState(), TableState()), underlay=False)
    (whole,) = [op for op in held.operations if isinstance(op, CreateWholeFilter)]
    assert [p.name for p in whole.desired.ports] == [WEB2.name]
    assert whole.desired.dhcp_servers == ("10.102.0.1",)


def test_what_a_held_network_has_is_left_as_it_is(tmp_path: Path) -> None:
    # Brought in before (its port filtered, its ports open, its gateway on its bridge),
    # then held back when its underlay went: kept, links and addresses with the rest.
    dhcp = frozenset({"10.100.0.1", "10.102.0.1"})
    ports = {"ports": frozenset({WEB1.name, WEB2.name}), "dhcp_servers": dhcp}
    ports |= {
        "port_mac": frozenset(f"{p.name} . {p.mac}" for p in (WEB1, WEB2)),
        "port_ip": frozenset(f"{p.name} . {p.address}" for p in (WEB1, WEB2)),
        "own_ports": frozenset({"vx100", "tapvpn100", "vx101", "eth2"}),
        "hairpin_uplinks": frozenset({"vx100 . vx100", "eth2 . eth2"}),
    }
    state = FilterState(_laid_out(sg.BRIDGE, ports), _laid_out(sg.GROUPS, {"dhcp_servers": dhcp}))
    gateway = Address(LINKS["br100"].index, "10.100.0.1", 24, None)
    brought_in = _plan(tmp_path, state, underlay=True, addresses=(gateway,))
    assert brought_in.held == frozenset()
    assert _touching_br100(brought_in.operations) == []

    held = _plan(tmp_path, state, underlay=False, addresses=(gateway,))
    assert held.held == {"br100", "br101"}
    assert _touching_br100(held.operations) == []
    assert not [op for op in held.operations if isinstance(op, RemovePortFilter)]
    assert not [op for op in held.operations if isinstance(op, DeleteLink | DeleteAddress)]


def test_the_bridge_table_stays_while_its_only_network_is_held(tmp_path: Path) -> None:
    # br100 alone here, with web1's port filtered, when its underlay goes: nothing else
    # needs the bridge table, but web1's port still does.
    desired = _with_ports()
    only = replace(
        desired,
        networks=desired.networks[:1],
        security=DesiredFilter(ports=(WEB1,), dhcp_servers=("10.100.0.1",)),
    )
    bridge = _laid_out(sg.BRIDGE, {"ports": frozenset({WEB1.name})})
    state = FilterState(bridge, _laid_out(sg.GROUPS, {}))
    observed = ObservedHost(links=LINKS, addresses=(), forwarding=True, nft=None, security=state)
    held = host_plan(only, observed, PlanContext(tmp_path, None, "dnsmasq", "nft"))
    assert held.held == {"br100"}
    assert DeleteFilterTable("bridge", "netcon") not in held.operations
    assert _touching_br100(held.operations) == []
