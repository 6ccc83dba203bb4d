"""A security-group change applied at its own keys: the nft commands it issues name only
its group's and its port's elements, nothing lists a table, and guests see the result."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from core.linux import nft, nftelements
from core.linux.scope import Scope
from core.linux.secgroups import tables as sg
from tests.host.conftest import Lab, in_ns
from tests.host.probes import probe, serve
from tests.host.scenario import NetworkHost, network_host


class Spy:
    """What an apply asks of nftables: the batches it runs, what it lists, what it looks up."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        self.batches: list[list[dict[str, Any]]] = []
        self.listed: list[str] = []
        self.looked_up: list[str] = []
        run, listings = nft.Nft.run, nft.listings
        get = nftelements.Lookup.get

        def spy_run(me: nft.Nft, commands: list[dict[str, Any]]) -> None:
            self.batches.append(commands)
            run(me, commands)

        def spy_listings(binary: str, netns: str | None, commands: Any, **kw: Any) -> Any:
            self.listed += list(commands)
            return listings(binary, netns, commands, **kw)

        def spy_get(me: nftelements.Lookup, table: str, name: str, keys: Any, *a: Any) -> Any:
            self.looked_up += [name] * len(keys)
            return get(me, table, name, keys, *a)

        monkeypatch.setattr(nft.Nft, "run", spy_run)
        monkeypatch.setattr(nft, "listings", spy_listings)
        monkeypatch.setattr(nftelements.Lookup, "get", spy_get)

    def reset(self) -> None:
        self.batches.clear()
        self.listed.clear()
        self.looked_up.clear()

    def commands(self) -> list[dict[str, Any]]:
        return [command for batch in self.batches for command in batch]


def _named(command: dict[str, Any]) -> str:
    """The set, map or chain one batch command acts on."""
    (verb,) = command.values()
    (kind, body), *_ = verb.items()
    return str(body.get("name") or body.get("chain") or kind)


def _apply_change(host: NetworkHost) -> Scope:
    scope = Scope.of(host.service.last_change)  # type: ignore[arg-type]
    assert scope is not None and scope.filter_keyed
    host.sync.sync(scope)
    return scope


def test_a_rule_change_touches_only_its_groups_elements(
    lab: Lab, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    host = network_host(lab, tmp_path)
    service = host.service
    service.create_project("alpha")
    service.create_networks("10.94.0.0/24", 1, 256)
    service.create_security_group("alpha", "web")
    service.create_security_group("alpha", "app")
    # Many ports and groups besides: none of their elements may be read or written.
    for k in range(20):
        service.launch_instance("alpha", f"other{k}", ["app" if k % 2 else "default"])
    bridge = service.list_networks()[0].bridge
    vm = service.launch_instance("alpha", "web", ["web"]).addresses[0]
    client_vm = service.launch_instance("alpha", "client", ["default"]).addresses[0]
    host.sync.sync()
    web_ns = host.instance("web", vm.mac, bridge)
    client_ns = host.instance("client", client_vm.mac, bridge)
    assert lab.dhcp_client(web_ns) == vm.address
    assert lab.dhcp_client(client_ns) == client_vm.address
    serve(lab, web_ns, vm.address, [80, 8080], [])
    # No rule lets anything in yet.
    assert probe(client_ns, [("tcp", vm.address, 80), ("tcp", vm.address, 8080)]) == [
        False,
        False,
    ]
    web_id = next(g.id for g in service.list_security_groups("alpha") if g.name == "web")
    spy = Spy(monkeypatch)

    service.add_security_group_rule("alpha", "web", "tcp", 80, 80)
    _apply_change(host)
    # One command: one element into web's port set. Nothing listed a table, and only
    # web's own sets were listed.
    assert [_named(c) for c in spy.commands()] == [sg.group_set(web_id, "ports")]
    assert not [c for c in spy.listed if c.startswith("list table")]
    assert {c.split()[-1] for c in spy.listed} <= {
        sg.group_set(web_id, kind) for kind in sg.GROUP_SETS
    }
    assert probe(client_ns, [("tcp", vm.address, 80), ("tcp", vm.address, 8080)]) == [
        True,
        False,
    ]
    assert host.sync.plan().operations == ()

    # The client joins web: its port's map element and chains of combinations, by key.
    spy.reset()
    service.add_instance_security_group("client", "web")
    _apply_change(host)
    touched = {_named(c) for c in spy.commands()}
    assert touched <= {
        sg.INSTANCE_MAP,
        # Its link-local address, judged over IPv6 as the groups say.
        sg.INSTANCE_MAP6,
        sg.combination_chain(tuple(sorted((web_id, _group_id(host, "default"))))),
        sg.combination_chain((_group_id(host, "default"),)),
    }, touched
    assert sg.INSTANCE_MAP in touched
    assert not [c for c in spy.listed if c.startswith("list table")]
    # Only the client's own address was looked up in the instance map: not 22 ports'.
    assert spy.looked_up.count(sg.INSTANCE_MAP) == 1
    assert spy.looked_up.count(sg.INSTANCE_MAP6) == 1
    assert host.sync.plan().operations == ()

    # The rule goes: nothing reaches the web guest again.
    spy.reset()
    (rule,) = [r for r in service.instance_ingress("web").rules if r.from_port == 80]
    service.remove_security_group_rule(rule.id)
    _apply_change(host)
    assert [_named(c) for c in spy.commands()] == [sg.group_set(web_id, "ports")]
    assert probe(client_ns, [("tcp", vm.address, 80)]) == [False]

    # Terminated: the port's elements go, by key, and the rest stays as the full look has it.
    spy.reset()
    service.terminate_instance("client")
    _apply_change(host)
    assert not [c for c in spy.listed if c.startswith("list table")]
    gone = {_named(c) for c in spy.commands()}
    assert {"ports", "port_mac", "port_ip", sg.INSTANCE_MAP, sg.INSTANCE_MAP6} <= gone
    assert host.sync.plan().operations == ()


def _group_id(host: NetworkHost, name: str) -> int:
    return next(g.id for g in host.service.list_security_groups("alpha") if g.name == name)


def test_chains_go_when_the_kernel_counts_no_jump_left(lab: Lab, tmp_path: Path) -> None:
    host = network_host(lab, tmp_path)
    service = host.service
    service.create_project("alpha")
    service.create_networks("10.95.0.0/24", 1, 256)
    service.create_security_group("alpha", "lone")
    service.create_security_group("alpha", "db")
    service.add_security_group_rule("alpha", "db", "tcp", 5432, 5432, source_group="lone")
    service.launch_instance("alpha", "db1", ["db"])
    host.sync.sync()
    service.launch_instance("alpha", "a", ["lone"])
    _apply_change(host)
    service.launch_instance("alpha", "b", ["lone"])
    _apply_change(host)
    lone = _group_id(host, "lone")
    chains = secgroup_chains(host)
    assert sg.group_chain(lone) in chains and sg.combination_chain((lone,)) in chains
    # One of two ports leaves: its combination and its group stay for the other.
    service.terminate_instance("a")
    _apply_change(host)
    assert sg.combination_chain((lone,)) in secgroup_chains(host)
    assert host.sync.plan().operations == ()
    # The last one: nothing jumps to either chain any more, so both go, with the
    # group's sets; its member set stays, as db's rule still names it.
    service.terminate_instance("b")
    _apply_change(host)
    chains = secgroup_chains(host)
    assert sg.group_chain(lone) not in chains
    assert sg.combination_chain((lone,)) not in chains
    assert host.sync.plan().operations == ()


def secgroup_chains(host: NetworkHost) -> set[str]:
    listing = in_ns(host.ns, "nft", "-j", "list", "chains", sg.GROUPS[0]).stdout
    return {
        item["chain"]["name"]
        for item in json.loads(listing)["nftables"]
        if "chain" in item and item["chain"]["table"] == sg.GROUPS[1]
    }


def test_groups_set_at_once_are_applied_at_their_keys(lab: Lab, tmp_path: Path) -> None:
    """Setting an instance's groups in one change names its port and the groups joined
    and left, as joining and leaving one at a time do: applied at those keys alone, the
    host matches the database, and guests see it."""
    host = network_host(lab, tmp_path)
    service = host.service
    service.create_project("alpha")
    service.create_networks("10.95.0.0/24", 1, 256)
    service.create_security_group("alpha", "web")
    service.add_security_group_rule("alpha", "web", "tcp", 80, 80)
    bridge = service.list_networks()[0].bridge
    vm = service.launch_instance("alpha", "web", ["default"]).addresses[0]
    client_vm = service.launch_instance("alpha", "client", ["default"]).addresses[0]
    host.sync.sync()
    web_ns = host.instance("web", vm.mac, bridge)
    client_ns = host.instance("client", client_vm.mac, bridge)
    assert lab.dhcp_client(web_ns) == vm.address
    assert lab.dhcp_client(client_ns) == client_vm.address
    serve(lab, web_ns, vm.address, [80, 8080], [])
    ports = [("tcp", vm.address, 80), ("tcp", vm.address, 8080)]
    # In default with the client: anything from a member of default gets in.
    assert probe(client_ns, ports) == [True, True]

    service.set_instance_security_groups("web", ["web"])
    scope = _apply_change(host)
    assert scope.filter_groups == {_group_id(host, "web"), _group_id(host, "default")}
    assert host.sync.plan().operations == ()
    assert probe(client_ns, ports) == [True, False]  # web's rule alone: port 80

    service.set_instance_security_groups("web", ["default"])
    _apply_change(host)
    assert host.sync.plan().operations == ()
    assert probe(client_ns, ports) == [True, True]
