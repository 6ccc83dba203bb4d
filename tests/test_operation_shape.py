"""Every host operation has one shape: a phase of the apply and its own ``execute``; the
executor knows no operation class by name."""

from __future__ import annotations

import ast
import dataclasses
import importlib
import pkgutil
from pathlib import Path

import core.linux
from core.linux import closedports, segment6
from core.linux.metadata import operations as metadata_operations
from core.linux.operations import (
    LAST_KERNEL_PHASE,
    AddAddress,
    CreateBridge,
    DeleteLink,
    EnableIpv6,
    IgnoreAdverts,
    Operation,
    Phase,
    ReleaseLeases,
    ReleaseLeases6,
    SetUplinkHairpin,
    StartDnsmasq,
    StartVpn,
    StopVpn,
)
from core.linux.secgroups import operations as filter_operations

ROOT = Path(__file__).resolve().parents[1]


def _concrete_operations() -> list[type[Operation]]:
    for module in pkgutil.walk_packages(core.linux.__path__, "core.linux."):
        importlib.import_module(module.name)
    found: list[type[Operation]] = []
    pending: list[type[Operation]] = [Operation]
    while pending:
        cls = pending.pop()
        for sub in cls.__subclasses__():
            pending.append(sub)
            # A class that only gives its subclasses a shape says nothing of its own: it
            # is not an operation a plan holds.
            if sub.describe is not Operation.describe:
                found.append(sub)
    return sorted(set(found), key=lambda c: c.__qualname__)


def test_every_operation_has_a_phase_and_an_execute() -> None:
    operations = _concrete_operations()
    assert {
        filter_operations.AddMember,
        closedports.LeasePort,
        metadata_operations.StartMetadataServer,
    } <= set(operations)
    assert len(operations) > 40
    missing = []
    for cls in operations:
        if not isinstance(getattr(cls, "phase", None), Phase | property):
            missing.append(f"{cls.__qualname__}: no phase")
        if cls.execute is Operation.execute:
            missing.append(f"{cls.__qualname__}: no execute")
    assert missing == []


def test_the_phase_is_no_field_of_an_operation() -> None:
    """What a plan shows and compares is the operation's own data."""
    assert "phase" not in {f.name for f in dataclasses.fields(AddAddress)}
    assert CreateBridge("br1") == CreateBridge("br1")


def test_phases_order_what_the_apply_does() -> None:
    assert StopVpn.phase < DeleteLink.phase < CreateBridge.phase < AddAddress.phase
    assert AddAddress.phase < filter_operations.AddMember.phase <= LAST_KERNEL_PHASE
    assert LAST_KERNEL_PHASE < StartDnsmasq.phase < StartVpn.phase
    # An uplink leaves hairpin mode before the nft batch and enters it after.
    assert SetUplinkHairpin("vx1", on=False).phase < Phase.NFT
    assert SetUplinkHairpin("vx1", on=True).phase > Phase.NFT


def test_the_ipv6_operations_have_their_place_in_the_order() -> None:
    """A bridge stops hearing adverts once IPv6 is on and before its addresses come; the
    segment filter, then the IPv6 metadata address and its DNAT (with the IPv4 one), go
    after the kernel phases and before anything announces or dnsmasq starts (its first
    advert is filtered)."""
    assert EnableIpv6.phase < IgnoreAdverts.phase < AddAddress.phase
    assert segment6.SetSegment6.phase == Phase.IPV6_SIDE
    for cls in (metadata_operations.AddMetadataAddress6, metadata_operations.SetMetadataRoute):
        assert cls.phase == Phase.METADATA_TABLE
    assert LAST_KERNEL_PHASE < Phase.IPV6_SIDE < Phase.METADATA_TABLE < Phase.ANNOUNCE
    assert StartDnsmasq.phase > Phase.ANNOUNCE
    assert ReleaseLeases6.phase == ReleaseLeases.phase > StartDnsmasq.phase


def test_the_executor_names_no_operation_class() -> None:
    tree = ast.parse((ROOT / "core" / "linux" / "executor.py").read_text())
    calls = [
        node
        for node in ast.walk(tree)
        if isinstance(node, ast.Call)
        and isinstance(node.func, ast.Name)
        and node.func.id == "isinstance"
    ]
    assert calls == []


def test_the_metadata_server_is_launched_after_dnsmasq_and_waited_for_last() -> None:
    """Its table goes with the IPv6 side; the server starts once every dnsmasq serves
    (its imports would take the CPU their starts need), and the apply waits for it
    after dnsmasq's follow-ups."""
    start = metadata_operations.StartMetadataServer
    assert Phase.IPV6_SIDE < metadata_operations.SetMetadataRoute.phase < Phase.ANNOUNCE
    assert Phase.ANNOUNCE < StartDnsmasq.phase < start.phase < ReleaseLeases.phase
    assert ReleaseLeases.phase < Phase.WAIT_METADATA < StartVpn.phase
