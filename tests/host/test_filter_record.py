"""A no-change apply lists neither security-group table (the ruleset generation the last
apply recorded vouches for them), while a change of the desired filter, a keyed apply
and a hand-made `nft delete element` all make the next apply look, and repair."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from core.linux.scope import Scope
from core.linux.secgroups import record as filter_record
from core.linux.secgroups import tables as sg
from tests.host.conftest import Lab, in_ns
from tests.host.probes import probe, serve
from tests.host.scenario import NetworkHost, network_host
from tests.host.test_secgroup_keys import Spy

FILTER_LISTINGS = {f"list table {family} {name}" for family, name in sg.TABLES}


def _filter_listed(spy: Spy) -> set[str]:
    return set(spy.listed) & FILTER_LISTINGS


def _group_id(host: NetworkHost, name: str) -> int:
    return next(g.id for g in host.service.list_security_groups("alpha") if g.name == name)


def _elements(ns: str, family: str, table: str, name: str) -> list[str]:
    """A set's elements as nft writes them."""
    listing = in_ns(ns, "nft", "list", "set", family, table, name).stdout
    found = re.search(r"elements = \{(.*?)\}", listing, re.S)
    return [] if found is None else [e.strip() for e in found.group(1).split(",")]


def test_no_change_apply_lists_no_filter_table_and_hand_drift_is_repaired(
    lab: Lab, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    host = network_host(lab, tmp_path)
    service = host.service
    service.create_project("alpha")
    service.create_networks("10.93.0.0/24", 1, 256)
    service.create_security_group("alpha", "web")
    service.add_security_group_rule("alpha", "web", "tcp", 80, 80)
    bridge = service.list_networks()[0].bridge
    vm = service.launch_instance("alpha", "web", ["web"]).addresses[0]
    client_vm = service.launch_instance("alpha", "client", ["default"]).addresses[0]
    host.sync.sync()
    web_ns = host.instance("web", vm.mac, bridge)
    client_ns = host.instance("client", client_vm.mac, bridge)
    assert lab.dhcp_client(web_ns) == vm.address
    assert lab.dhcp_client(client_ns) == client_vm.address
    serve(lab, web_ns, vm.address, [80, 8080], [])
    assert probe(client_ns, [("tcp", vm.address, 80), ("tcp", vm.address, 8080)]) == [
        True,
        False,
    ]
    state_dir = host.layer.state_dir
    assert filter_record.read(state_dir) is not None
    spy = Spy(monkeypatch)

    # Nothing changed: neither table is listed, and nothing is planned or run.
    assert host.sync.sync().operations == ()
    assert host.sync.plan().operations == ()
    assert _filter_listed(spy) == set(), spy.listed
    assert not [c for batch in spy.batches for c in batch if "element" in str(c)]

    # A change of the desired filter, with the kernel's ruleset as recorded: the record
    # does not vouch for this plan, so the tables are listed and the change applied.
    spy.reset()
    service.add_security_group_rule("alpha", "web", "tcp", 8080, 8080)
    assert host.sync.sync().operations != ()
    assert _filter_listed(spy) == FILTER_LISTINGS
    assert probe(client_ns, [("tcp", vm.address, 8080)]) == [True]
    spy.reset()
    assert host.sync.sync().operations == ()
    assert _filter_listed(spy) == set()

    # By hand: one of web's port elements goes from the groups table. The next apply
    # finds it gone (the ruleset generation moved), lists the tables and puts it back.
    ports_set = sg.group_set(_group_id(host, "web"), "ports")
    family, table = sg.GROUPS
    element = _elements(host.ns, family, table, ports_set)[0]
    in_ns(host.ns, "nft", "delete", "element", family, table, ports_set, f"{{ {element} }}")
    assert element not in _elements(host.ns, family, table, ports_set)
    spy.reset()
    repaired = host.sync.sync()
    assert _filter_listed(spy) == FILTER_LISTINGS
    assert repaired.operations != ()
    assert element in _elements(host.ns, family, table, ports_set)
    assert probe(client_ns, [("tcp", vm.address, 80), ("tcp", vm.address, 8080)]) == [
        True,
        True,
    ]
    spy.reset()
    assert host.sync.sync().operations == ()
    assert _filter_listed(spy) == set()

    # A bridge table element deleted by hand (the instance's own port) is found too.
    bridge_family, bridge_table = sg.BRIDGE
    own = _elements(host.ns, bridge_family, bridge_table, "own_ports")[0]
    in_ns(
        host.ns,
        "nft",
        "delete",
        "element",
        bridge_family,
        bridge_table,
        "own_ports",
        f"{{ {own} }}",
    )
    spy.reset()
    assert host.sync.sync().operations != ()
    assert _filter_listed(spy) == FILTER_LISTINGS
    assert own in _elements(host.ns, bridge_family, bridge_table, "own_ports")

    # A keyed apply changes the filter at its keys and records nothing: the next full
    # apply looks (the generation moved), finds nothing to do, and records again.
    service.add_security_group_rule("alpha", "web", "tcp", 22, 22)
    scope = Scope.of(service.last_change)  # type: ignore[arg-type]
    assert scope is not None and scope.filter_keyed
    host.sync.sync(scope)
    spy.reset()
    assert host.sync.sync().operations == ()
    assert _filter_listed(spy) == FILTER_LISTINGS
    spy.reset()
    assert host.sync.sync().operations == ()
    assert _filter_listed(spy) == set()
    assert probe(client_ns, [("tcp", vm.address, 80)]) == [True]
