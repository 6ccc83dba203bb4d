"""Fencing without a kernel: the lease's arithmetic, the setting, and how a plan treats
addresses that carry the lease (a renewal is never a difference; the kind is)."""

from __future__ import annotations

from pathlib import Path

import pytest

from core.config import load_settings
from core.errors import InvalidInput
from core.linux import lease
from core.linux.desired import DesiredHost, DesiredNetwork, FloatingNat, Segment
from core.linux.netlink import Address, Link
from core.linux.observed import FLOATING_LABEL, OWNER_ALIAS, ObservedHost
from core.linux.operations import AddAddress, SetAddressLifetime
from core.linux.planner import PlanContext, plan


def test_a_lease_ends_no_later_than_the_heartbeat_allows() -> None:
    sent = lease.clock()
    given = lease.Lease.from_heartbeat(sent, 60)
    assert 58 <= given.lifetime() <= 60
    assert not given.lapsed()
    # Less than a second left still gets the kernel's least, one second.
    assert lease.Lease(lease.clock() + 0.4).lifetime() == 1
    late = lease.Lease(lease.clock() - 3)
    assert late.lapsed()
    with pytest.raises(lease.LeaseLapsed, match="lapsed 3"):
        late.lifetime()


def test_fencing_auto_leases_only_on_a_shared_database() -> None:
    assert lease.leased("auto", "postgresql")
    assert not lease.leased("auto", "sqlite")
    assert lease.leased("lease", "sqlite")
    assert not lease.leased("off", "postgresql")


def test_fencing_is_checked_when_read(tmp_path: Path) -> None:
    config = tmp_path / "netcon.toml"
    config.write_text('fencing = "sometimes"\n')
    with pytest.raises(InvalidInput, match="fencing: 'sometimes' must be one of auto, lease, off"):
        load_settings(paths=[config])
    config.write_text('fencing = "lease"\n')
    assert load_settings(paths=[config]).fencing == "lease"


BRIDGE = Link(7, "br100", "bridge", 0, True, OWNER_ALIAS, None, 0, 1450)
SEGMENT = Link(8, "vx100", "vxlan", 7, True, OWNER_ALIAS, 100, 2, 1450)
PUBLIC = Link(3, "pub0", "veth", 0, True, None, None, 0, 1500)
UNDERLAY = Link(2, "und0", "veth", 0, True, None, None, 0, 1500)


def _desired() -> DesiredHost:
    network = DesiredNetwork(
        id=1,
        cidr="10.0.0.0/24",
        manager="vlan",
        label="alpha",
        project="alpha",
        bridge="br100",
        owns_bridge=True,
        bridge_interface=None,
        segment=Segment("vxlan", 100, "und0"),
        gateway="10.0.0.1",
        prefixlen=24,
        broadcast="10.0.0.255",
        dhcp=None,
        isolated=False,
        mtu=1450,
    )
    return DesiredHost(
        host="h1",
        public_interface="pub0",
        vxlan_group="239.1.1.1",
        vxlan_port=4789,
        networks=(network,),
        floating=(FloatingNat("203.0.113.9", "10.0.0.5", "pub0"),),
        snat_ranges=(),
    )


def _observed(*, permanent: bool) -> ObservedHost:
    return ObservedHost(
        links={link.name: link for link in (BRIDGE, SEGMENT, PUBLIC, UNDERLAY)},
        addresses=(
            Address(7, "10.0.0.1", 24, "br100", permanent=permanent),
            Address(3, "203.0.113.9", 32, FLOATING_LABEL, permanent=permanent),
        ),
        forwarding=True,
        nft=None,
    )


def _context(leased: bool) -> PlanContext:
    return PlanContext(Path("/nonexistent"), None, "dnsmasq", "nft", leased=leased)


def _lifetimes(found: tuple[object, ...]) -> list[object]:
    return [op for op in found if isinstance(op, AddAddress | SetAddressLifetime)]


def test_a_renewed_lease_is_no_difference_but_its_kind_is() -> None:
    desired = _desired()
    # Leased addresses already there: nothing to do, however much of the lease is left.
    assert _lifetimes(plan(desired, _observed(permanent=False), _context(True)).operations) == []
    # Permanent ones on a fenced host get the lease, once.
    assert _lifetimes(plan(desired, _observed(permanent=True), _context(True)).operations) == [
        SetAddressLifetime("br100", "10.0.0.1", 24, True),
        SetAddressLifetime("pub0", "203.0.113.9", 32, True),
    ]
    # And the other way round when fencing is off.
    assert _lifetimes(plan(desired, _observed(permanent=False), _context(False)).operations) == [
        SetAddressLifetime("br100", "10.0.0.1", 24, False),
        SetAddressLifetime("pub0", "203.0.113.9", 32, False),
    ]
    assert _lifetimes(plan(desired, _observed(permanent=True), _context(False)).operations) == []
    said = SetAddressLifetime("br100", "10.0.0.1", 24, True).describe()
    assert (
        said == "let address 10.0.0.1/24 on br100 last only as long as this host's heartbeat lease"
    )


def test_an_address_whose_lease_ran_out_is_added_again_with_the_lease() -> None:
    gone = ObservedHost(
        links={link.name: link for link in (BRIDGE, SEGMENT, PUBLIC, UNDERLAY)},
        addresses=(),
        forwarding=True,
        nft=None,
    )
    added = _lifetimes(plan(_desired(), gone, _context(True)).operations)
    assert added == [
        AddAddress("br100", "10.0.0.1", 24, "10.0.0.255", None, leased=True),
        AddAddress("pub0", "203.0.113.9", 32, None, FLOATING_LABEL, leased=True),
    ]
