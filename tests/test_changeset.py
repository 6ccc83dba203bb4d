"""What a committed change tells the host side: the networks and floating IPs it touched."""

from __future__ import annotations

import json
from pathlib import Path

from core.linux.scope import Scope
from core.service import ChangeSet
from tests.support import make_service


def test_a_change_set_travels_as_small_json_and_merges() -> None:
    one = ChangeSet(frozenset({3}), True, frozenset({"203.0.113.5"}), frozenset({"nh1"}), 41)
    text = json.dumps(one.to_json())
    assert len(text) < 120
    assert ChangeSet.from_json(json.loads(text)) == one
    two = ChangeSet(frozenset({4}), True, frozenset({"203.0.113.6"}), frozenset({"nh2"}), 42)
    merged = one | two
    assert merged.network_ids == {3, 4}
    assert merged.floating_addresses == {"203.0.113.5", "203.0.113.6"}
    assert merged.hosts == {"nh1", "nh2"} and merged.change == 42
    # "Some floating IP, unknown which" stays unknown when merged.
    unknown = merged | ChangeSet(floating=True)
    assert unknown.floating and not unknown.floating_addresses
    assert Scope.of(unknown) is None


def test_scope_of_a_change() -> None:
    scope = Scope.of(ChangeSet(frozenset({1, 2}), True, frozenset({"203.0.113.5"})))
    assert scope == Scope(frozenset({1, 2}), frozenset({"203.0.113.5"}))
    assert Scope.from_json(json.loads(json.dumps(scope.to_json()))) == scope
    assert Scope.of(ChangeSet(frozenset({1}))) == Scope(frozenset({1}))


def test_a_scope_of_vpns_alone_leaves_their_networks_be() -> None:
    vpns = Scope(vpns=frozenset({"alpha"}))
    assert vpns and vpns.vpns_only
    assert Scope.from_json(json.loads(json.dumps(vpns.to_json()))) == vpns
    assert not Scope(frozenset({1}), vpns=frozenset({"alpha"})).vpns_only
    assert not Scope().vpns_only and not Scope()


def _touched(changes: ChangeSet) -> tuple[set[int], bool, set[str]]:
    return set(changes.network_ids), changes.floating, set(changes.floating_addresses)


def test_each_change_names_what_it_touched(tmp_path: Path) -> None:
    service = make_service(tmp_path, quota_floating_ips=5)
    told: list[ChangeSet] = []
    service.listeners.append(told.append)
    (made,) = service.create_networks("10.0.0.0/16", 1, 256, 100, 1000)
    assert told[-1].network_ids == {made.id}
    service.create_project("alpha")
    service.launch_instance("alpha", "web1")
    assert _touched(told[-1]) == ({made.id}, False, set())
    service.create_floating_range("nethost1", "203.0.113.0/29")
    address = service.allocate_floating_ip("alpha").address
    count = len(told)
    service.associate_floating_ip(address, "web1")
    # The floating IP by its address, and not its network, which stays as it was: an
    # apply of this change plans that one address alone.
    assert [_touched(c) for c in told[count:]] == [(set(), True, {address})]
    assert Scope.of(told[-1]) == Scope(frozenset(), frozenset({address}))
    assert told[-1].hosts == {"nethost1"}
    service.terminate_instance("web1")
    assert _touched(told[-1]) == ({made.id}, True, {address})
    with service.deferred_changes():
        service.launch_instance("alpha", "web2")
        service.associate_floating_ip(address, "web2")
        service.disassociate_floating_ip(address)
    assert _touched(told[-1]) == ({made.id}, True, {address})


def test_a_change_names_the_filter_keys_it_touched_and_merges_them() -> None:
    rule = ChangeSet(security=True, security_groups=frozenset({7}))
    join = ChangeSet(security=True, security_ports=frozenset({("fa:16:3e:00:00:01", "10.0.0.5")}))
    merged = rule | join
    assert merged.security_groups == {7}
    assert merged.security_ports == {("fa:16:3e:00:00:01", "10.0.0.5")}
    assert ChangeSet.from_json(json.loads(json.dumps(merged.to_json()))) == merged
    scope = Scope.of(merged)
    assert scope is not None and scope.filter_keyed
    assert Scope.from_json(json.loads(json.dumps(scope.to_json()))) == scope
    # A filter change that names no keys makes the merge compare every element.
    whole = merged | ChangeSet(security=True)
    assert whole.security and not whole.security_keyed
    assert not Scope.of(whole).filter_keyed  # type: ignore[union-attr]
    # So does a network's change that is no filter change: its elements have no key.
    network = merged | ChangeSet(frozenset({3}))
    assert network.security and not network.security_keyed


def test_filter_changes_name_their_group_or_ports(tmp_path: Path) -> None:
    service = make_service(tmp_path)
    service.create_networks("10.0.0.0/24", 1, 256)
    service.create_project("alpha")
    service.create_security_group("alpha", "web")
    vm = service.launch_instance("alpha", "vm1", ["web"])
    address = vm.addresses[0]
    port = (address.mac, address.address)
    assert service.last_change is not None and service.last_change.security_ports == {port}
    service.add_security_group_rule("alpha", "web", "tcp", 80)
    group = service.last_change.security_groups
    assert len(group) == 1 and not service.last_change.security_ports
    service.add_instance_security_group("vm1", "default")
    assert service.last_change.security_ports == {port}
    service.terminate_instance("vm1")
    assert service.last_change.security_ports == {port}
