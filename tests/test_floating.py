"""Floating IPs: pool, allocation to projects, association with instances."""

from __future__ import annotations

from pathlib import Path

import pytest

from core.errors import Conflict, InvalidInput, NoMoreFloatingIps, NotFound, QuotaExceeded
from core.service import NetconService
from tests.support import make_service


@pytest.fixture
def service(tmp_path: Path) -> NetconService:
    service = make_service(tmp_path, quota_floating_ips=3, default_floating_pool="public")
    service.create_networks("10.0.0.0/16", 2, 256, 100, 1000)
    service.create_project("alpha")
    service.create_project("beta")
    service.launch_instance("alpha", "web1")
    service.launch_instance("beta", "app1")
    return service


def test_create_list_delete_range(service: NetconService) -> None:
    assert service.create_floating_range("nethost1", "203.0.113.0/29").addresses == 6
    made = service.create_floating_range("nethost1", "198.51.100.10-198.51.100.12", pool="b")
    assert made.addresses == 3
    listed = service.list_floating_ips()
    assert [f.address for f in listed][:2] == ["198.51.100.10", "198.51.100.11"]
    assert {f.interface for f in listed} == {"eth0"}
    with pytest.raises(Conflict, match="overlaps existing floating IP 203.0.113.1"):
        service.create_floating_range("nethost1", "203.0.113.1")
    with pytest.raises(Conflict, match="overlaps fixed network 10.0.0.0/24"):
        service.create_floating_range("nethost1", "10.0.0.0/28")
    assert service.delete_floating_range("203.0.113.0/29").addresses == 6
    with pytest.raises(NotFound):
        service.delete_floating_range("203.0.113.0/29")
    assert len(service.list_floating_ips()) == 3


@pytest.mark.parametrize(
    ("host", "ip_range", "field"),
    [
        ("nethost1", "203.0.113.0/33", "ip_range"),
        ("nethost1", "203.0.113.9-203.0.113.1", "ip_range"),
        ("nethost1", "10.0.0.0/8", "ip_range"),
        ("nethost1", "2001:db8::/64", "ip_range"),
        ("net host", "203.0.113.0/30", "host"),
        ("nethost1;rm", "203.0.113.0/30", "host"),
    ],
)
def test_bad_ranges(service: NetconService, host: str, ip_range: str, field: str) -> None:
    with pytest.raises(InvalidInput) as caught:
        service.create_floating_range(host, ip_range)
    assert caught.value.field == field
    assert service.list_floating_ips() == []


def test_allocate_associate_disassociate_release(service: NetconService) -> None:
    service.create_floating_range("nethost1", "203.0.113.0/30")
    floating = service.allocate_floating_ip("alpha")
    assert (floating.address, floating.project) == ("203.0.113.1", "alpha")
    with pytest.raises(Conflict, match="belongs to alpha"):
        service.associate_floating_ip(floating.address, "app1")
    associated = service.associate_floating_ip(floating.address, "web1")
    assert (associated.instance, associated.fixed_address) == ("web1", "10.0.0.3")
    with pytest.raises(Conflict, match="already associated with web1"):
        service.associate_floating_ip(floating.address, "web1")
    second = service.allocate_floating_ip("alpha")
    with pytest.raises(Conflict, match="already has floating IP"):
        service.associate_floating_ip(second.address, "web1")
    with pytest.raises(Conflict, match="disassociate it first"):
        service.release_floating_ip(floating.address)
    service.disassociate_floating_ip(floating.address)
    with pytest.raises(Conflict, match="not associated"):
        service.disassociate_floating_ip(floating.address)
    service.release_floating_ip(floating.address)
    assert service.get_floating_ip(floating.address).project is None
    with pytest.raises(Conflict, match="release them first"):
        service.delete_floating_range("203.0.113.0/30")


def test_pool_exhaustion_and_quota(service: NetconService) -> None:
    service.create_floating_range("nethost1", "203.0.113.0/29")
    for _ in range(3):
        service.allocate_floating_ip("alpha")
    with pytest.raises(QuotaExceeded, match="quota_floating_ips"):
        service.allocate_floating_ip("alpha")
    for _ in range(3):
        service.allocate_floating_ip("beta")
    service.create_project("gamma")
    with pytest.raises(NoMoreFloatingIps, match="no more floating IPs in pool public"):
        service.allocate_floating_ip("gamma")
    with pytest.raises(NotFound, match="project"):
        service.allocate_floating_ip("nobody")


def test_unknown_addresses_and_instances(service: NetconService) -> None:
    service.create_floating_range("nethost1", "203.0.113.0/30")
    with pytest.raises(NotFound, match="not a floating IP"):
        service.associate_floating_ip("198.51.100.1", "web1")
    floating = service.allocate_floating_ip("alpha")
    with pytest.raises(NotFound, match="instance"):
        service.associate_floating_ip(floating.address, "ghost")
    with pytest.raises(InvalidInput):
        service.associate_floating_ip("203.0.113", "web1")


def test_associate_moves_an_associated_address_in_one_change(service: NetconService) -> None:
    import json

    service.launch_instance("alpha", "web2")
    service.create_floating_range("nethost1", "203.0.113.0/30")
    floating = service.allocate_floating_ip("alpha").address
    service.associate_floating_ip(floating, "web1")
    events = len(service.list_audit())

    moved = service.associate_floating_ip(floating, "web2")
    assert (moved.instance, moved.fixed_address) == ("web2", "10.0.0.4")
    # One change: one audit event with where it was and where it is, one change set for
    # the host that NATs it.
    audit = service.list_audit()
    assert len(audit) == events + 1
    assert audit[0].action == "floating.associate" and audit[0].target == floating
    assert json.loads(audit[0].before or "{}") == {"instance": "web1", "fixed": "10.0.0.3"}
    assert json.loads(audit[0].after or "{}") == {"instance": "web2", "fixed": "10.0.0.4"}
    change = service.last_change
    assert change is not None and change.floating_addresses == {floating}
    assert change.hosts == {"nethost1"}

    # Where it already is: refused, as nothing would change.
    with pytest.raises(Conflict, match=r"already associated with web2 \(10.0.0.4\)"):
        service.associate_floating_ip(floating, "web2")
    # With move=False an associated address stays where it is.
    with pytest.raises(Conflict, match=r"associated with web2 \(10.0.0.4\); not moved to web1"):
        service.associate_floating_ip(floating, "web1", move=False)
    assert service.get_floating_ip(floating).instance == "web2"
    # An instance that holds another floating IP does not take a second one by a move.
    other = service.allocate_floating_ip("alpha").address
    service.associate_floating_ip(other, "web1")
    with pytest.raises(Conflict, match="already has floating IP"):
        service.associate_floating_ip(floating, "web1")
    assert service.get_floating_ip(floating).instance == "web2"
    # The move, the allocation and the association of the other: the refusals wrote nothing.
    assert len(service.list_audit()) == events + 3
