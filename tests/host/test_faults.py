"""Bad input and faults: one clear line, nothing half-applied, and the next apply converges."""

from __future__ import annotations

from pathlib import Path

import pytest

from core.errors import HeldBack, HostError
from core.linux.nft import Nft
from core.linux.secgroups.operations import is_filter_operation
from core.service.hostsync import HostSync
from tests.host.conftest import Lab, in_ns
from tests.host.scenario import NetworkHost, network_host


def _snapshot(host: NetworkHost) -> tuple[list[str], list[tuple[str, int]], bool]:
    observed = host.layer.observe()
    addresses = sorted((a.address, a.prefixlen) for a in observed.addresses)
    table = Nft("nft", host.ns).observe().exists
    return sorted(observed.links), addresses, table


def _refused(layer: HostSync) -> str:
    with pytest.raises(HostError) as caught:
        layer.sync()
    message = str(caught.value)
    assert "\n" not in message
    return message


def _converges(host: NetworkHost, layer: HostSync) -> None:
    assert layer.sync().operations
    assert layer.plan().operations == ()


def _one_network(host: NetworkHost, cidr: str) -> None:
    service = host.service
    service.create_project("alpha")
    service.create_networks(cidr, 1, 256)
    service.launch_instance("alpha", "vm1")


def test_missing_dnsmasq(lab: Lab, tmp_path: Path) -> None:
    host = network_host(lab, tmp_path, dnsmasq_binary="/nonexistent/dnsmasq")
    _one_network(host, "10.81.0.0/24")
    before = _snapshot(host)
    assert "/nonexistent/dnsmasq: program not found" in _refused(host.sync)
    assert _snapshot(host) == before
    fixed = HostSync(host.service, settings=host.service.settings.replace(dnsmasq_binary="dnsmasq"))
    _converges(host, fixed)


def test_missing_nft(lab: Lab, tmp_path: Path) -> None:
    host = network_host(lab, tmp_path, nft_binary="/nonexistent/nft")
    _one_network(host, "10.82.0.0/24")
    before = _snapshot(host)
    assert "nft: program not found" in _refused(host.sync)
    assert _snapshot(host) == before
    fixed = HostSync(host.service, settings=host.service.settings.replace(nft_binary="nft"))
    _converges(host, fixed)


def test_missing_public_interface(lab: Lab, tmp_path: Path) -> None:
    host = network_host(lab, tmp_path, public_interface="wan7")
    _one_network(host, "10.83.0.0/24")
    before = _snapshot(host)
    assert "public interface wan7 does not exist" in _refused(host.sync)
    assert _snapshot(host) == before
    in_ns(host.ns, "ip", "link", "set", "pub0", "name", "wan7")
    _converges(host, host.sync)


def test_address_used_by_something_else(lab: Lab, tmp_path: Path) -> None:
    host = network_host(lab, tmp_path)
    _one_network(host, "10.84.0.0/24")
    # The gateway netcon wants is already on an interface it does not own.
    in_ns(host.ns, "ip", "addr", "add", "10.84.0.1/24", "dev", "und1")
    before = _snapshot(host)
    message = _refused(host.sync)
    assert message == (
        "address 10.84.0.1 (gateway of 10.84.0.0/24) is already on und1, which netcon does "
        "not own (that network held back; everything else applied)"
    )
    assert _snapshot(host) == before
    in_ns(host.ns, "ip", "addr", "del", "10.84.0.1/24", "dev", "und1")
    _converges(host, host.sync)
    # netcon never touched und1, and removing the network removes only what it made.
    assert "und1" in host.layer.observe().links


def test_flat_network_needs_the_admins_bridge(lab: Lab, tmp_path: Path) -> None:
    host = network_host(lab, tmp_path)
    service = host.service
    service.create_project("flatproj", manager="flat")
    service.create_networks("10.85.0.0/24", manager="flat", bridge="brflat")
    service.launch_instance("flatproj", "vm1")
    assert "bridge brflat does not exist" in _refused(host.sync)
    in_ns(host.ns, "ip", "link", "add", "brflat", "type", "bridge")
    # The admin's bridge is used as it is: nothing to create (but the instance's port
    # filter), and never deleted.
    # (The port filter was already applied beside the refused network.)
    made = host.sync.sync().operations
    assert all(is_filter_operation(op) for op in made)
    assert host.sync.plan().operations == ()
    service.terminate_instance("vm1")
    service.delete_network("10.85.0.0/24")
    host.sync.sync()
    assert "brflat" in host.layer.observe().links


def test_removed_network_takes_only_netcons_things(lab: Lab, tmp_path: Path) -> None:
    host = network_host(lab, tmp_path)
    _one_network(host, "10.86.0.0/24")
    host.sync.sync()
    assert {"br100", "vx100"} <= set(host.layer.observe().links)
    service = host.service
    service.terminate_instance("vm1")
    service.delete_project("alpha")
    service.delete_network("10.86.0.0/24")
    removed = host.sync.sync().describe()
    assert "delete link br100" in removed and "delete link vx100" in removed
    assert any(line.startswith("stop dnsmasq for br100") for line in removed)
    links = set(host.layer.observe().links)
    assert not {"br100", "vx100"} & links
    assert {"pub0", "und0", "und1", "lo"} <= links
    assert host.sync.plan().operations == ()


def test_links_left_by_an_interrupted_apply_are_finished(lab: Lab, tmp_path: Path) -> None:
    host = network_host(lab, tmp_path)
    _one_network(host, "10.87.0.0/24")
    # As if an apply died after creating br100, before marking it as netcon's.
    in_ns(host.ns, "ip", "link", "add", "br100", "type", "bridge")
    host.layer.journal.parent.mkdir(parents=True, exist_ok=True)
    host.layer.journal.write_text("br100\n")
    applied = host.sync.sync().describe()
    assert "mark br100 as netcon's" in applied and "create bridge br100" not in applied
    assert host.layer.observe().links["br100"].alias == "netcon"
    assert host.sync.plan().operations == ()


def test_an_apply_that_holds_a_network_back_owes_only_that_network(
    lab: Lab, tmp_path: Path
) -> None:
    """After a partial apply the host owes what it held back and nothing it brought in:
    `host list`'s PENDING (and the console's, the same count) drops by what went in."""
    host = network_host(lab, tmp_path)
    service = host.service
    here = service.settings.host
    service.create_networks("10.85.0.0/23", 2, 256)
    service.create_project("alpha")
    service.create_project("beta")
    service.launch_instance("alpha", "a1")
    service.create_floating_range(here, "203.0.113.40/30", pool="public")
    address = service.allocate_floating_ip("alpha", "public").address
    service.associate_floating_ip(address, "a1")
    held = service.get_network("10.85.0.0/24")
    # beta's network is the one in the way; alpha's and its floating IP go in.
    service.launch_instance("beta", "b1")
    beta = service.get_network("10.85.1.0/24")
    assert (held.project, beta.project) == ("alpha", "beta")
    in_ns(host.ns, "ip", "link", "add", beta.bridge, "type", "veth", "peer", "name", "other0")
    owed_before = service.pending_for(here).changes
    beta_changes = tuple(
        change
        for change in service.owed(here).changes
        if change.scope is not None and beta.id in change.scope.network_ids
    )
    assert beta_changes and len(beta_changes) < len(owed_before)

    with pytest.raises(HeldBack):
        host.sync.apply()
    # What went in is the picture a port plugged later is matched against.
    assert host.sync.desired is not None
    assert held.bridge in {n.bridge for n in host.sync.desired.networks}
    pending = service.pending_for(here)
    assert pending.changes == tuple(c.change for c in beta_changes)
    (listed,) = [h for h in service.pending_overview().hosts if h.name == here]
    assert listed.pending == len(beta_changes)
    assert listed.last_error is not None and beta.cidr in listed.last_error
    assert listed.applied_at is not None  # what went in was applied, and when
    # Applied again with the link still there: still owed, never recorded as applied.
    with pytest.raises(HeldBack):
        host.sync.apply()
    assert service.pending_for(here).changes == pending.changes

    # Once the link is gone, the next apply brings beta's network in: nothing owed.
    in_ns(host.ns, "ip", "link", "del", beta.bridge)
    host.sync.apply()
    assert service.pending_for(here).changes == ()
    (listed,) = [h for h in service.pending_overview().hosts if h.name == here]
    assert listed.pending == 0 and listed.last_error is None


def test_a_link_in_one_networks_way_holds_back_that_network_only(lab: Lab, tmp_path: Path) -> None:
    host = network_host(lab, tmp_path)
    service = host.service
    service.create_networks("10.86.0.0/23", 2, 256)
    service.create_project("alpha")
    service.create_project("beta")
    service.launch_instance("alpha", "a1")
    service.launch_instance("beta", "b1")
    first, second = sorted(service.list_networks(), key=lambda n: n.cidr)
    # Another program made a link where the second network's bridge goes.
    in_ns(host.ns, "ip", "link", "add", second.bridge, "type", "veth", "peer", "name", "other0")
    plan = host.sync.plan()
    assert plan.partial
    assert plan.problems == (
        f"network {second.cidr}: {second.bridge} exists but is a veth link, not a bridge",
    )
    assert not [line for line in plan.describe() if second.bridge in line]
    message = _refused(host.sync)
    assert message.startswith(f"network {second.cidr}: ")
    assert message.endswith("(that network held back; everything else applied)")
    # The first network is served; the second is left exactly as it was.
    observed = host.layer.observe()
    assert any(a.address == first.gateway for a in observed.addresses)
    assert first.bridge in observed.dnsmasq
    assert not any(a.address == second.gateway for a in observed.addresses)
    assert second.bridge not in observed.dnsmasq
    nat = Nft("nft", host.ns).observe()
    assert nat.sets["fixed_nets"] == frozenset({first.cidr})
    # Once the other program's bridge is gone, the next apply brings the second one up.
    in_ns(host.ns, "ip", "link", "del", second.bridge)
    _converges(host, host.sync)
    assert any(a.address == second.gateway for a in host.layer.observe().addresses)
