"""The host input filter's plan: which bridges' guards it adds and removes, and when the
table comes and goes (a held network's guard and a scoped plan's unseen ones stay)."""

from __future__ import annotations

from core.linux.hostinput import (
    HOST_INPUT_TABLE,
    CreateHostInputTable,
    DeleteHostInputTable,
    GuardBridge,
    plan,
)
from core.linux.nfttable import ObservedNames, parse
from core.linux.operations import LAST_KERNEL_PHASE, Phase, StartDnsmasq


def _have(*bridges: str, layout_ok: bool = True) -> ObservedNames:
    return ObservedNames(table=True, layout_ok=layout_ok, names=frozenset(bridges))


def test_a_first_bridge_makes_the_table_and_guards_it() -> None:
    assert plan(frozenset({"br100"}), ObservedNames(), nft_found=True) == [
        CreateHostInputTable(replace=False),
        GuardBridge("br100", add=True),
    ]


def test_a_matching_set_plans_nothing() -> None:
    assert plan(frozenset({"br100", "br101"}), _have("br100", "br101"), nft_found=True) == []


def test_a_gone_bridge_loses_its_guard_and_the_last_takes_the_table() -> None:
    assert plan(frozenset({"br100"}), _have("br100", "br101"), nft_found=True) == [
        GuardBridge("br101", add=False)
    ]
    assert plan(frozenset(), _have("br100"), nft_found=True) == [DeleteHostInputTable()]
    assert plan(frozenset(), ObservedNames(), nft_found=True) == []


def test_a_held_networks_guard_stays_as_it_is() -> None:
    held = frozenset({"br101"})
    assert plan(frozenset({"br100"}), _have("br100", "br101"), nft_found=True, held=held) == []
    # Not there yet: not added either.
    assert plan(frozenset({"br100"}), _have("br100"), nft_found=True, held=held) == []
    # The last other bridge gone: the table stays for the held one.
    assert plan(frozenset(), _have("br100", "br101"), nft_found=True, held=held) == [
        GuardBridge("br100", add=False)
    ]
    # A table made again keeps guarding it.
    assert plan(
        frozenset({"br100"}), _have("br101", layout_ok=False), nft_found=True, held=held
    ) == [
        CreateHostInputTable(replace=True),
        GuardBridge("br100", add=True),
        GuardBridge("br101", add=True),
    ]


def test_a_scoped_plan_only_adds() -> None:
    assert plan(frozenset({"br102"}), _have("br100"), nft_found=True, scoped=True) == [
        GuardBridge("br102", add=True)
    ]
    assert plan(frozenset(), _have("br100"), nft_found=True, scoped=True) == []


def test_without_nft_or_the_right_to_read_nothing_is_planned() -> None:
    assert plan(frozenset({"br100"}), ObservedNames(), nft_found=False) == []
    unread = ObservedNames(unread=True)
    assert plan(frozenset({"br100"}), unread, nft_found=True) == []


def test_the_plan_says_what_a_guest_gets() -> None:
    assert GuardBridge("br100", add=True).describe() == (
        "let guests on br100 reach only DHCP, DNS, ping and metadata on this host"
    )


def test_the_filter_is_in_place_before_any_daemon_starts() -> None:
    """A guest never finds a freshly started service of the host unguarded; a failure
    of the filter's batch leaves the rest of the kernel work in place (as the segment
    filter's)."""
    assert GuardBridge.phase == CreateHostInputTable.phase == Phase.HOST_INPUT
    assert LAST_KERNEL_PHASE < Phase.METADATA_TABLE < Phase.HOST_INPUT < Phase.ANNOUNCE
    assert StartDnsmasq.phase > Phase.HOST_INPUT


def test_a_table_without_the_address_check_is_made_again() -> None:
    """The table as it was before guests were held to their own bridge's addresses
    (the same rules, that one missing) is not the layout: the plan makes it whole."""
    (chain,) = HOST_INPUT_TABLE.chains
    older = [rule for rule in chain.rules if not rule.startswith("fib daddr . iif type")]
    assert len(older) == len(chain.rules) - 1
    listing = [
        {"table": {"family": "inet", "name": HOST_INPUT_TABLE.name}},
        {"set": {"name": "bridges", "elem": ["br100"]}},
        {"chain": {"name": chain.name}},
        *({"rule": {"chain": chain.name, "expr": rule}} for rule in older),
    ]
    found = parse(HOST_INPUT_TABLE, listing)
    assert not found.layout_ok
    have = ObservedNames(table=True, layout_ok=found.layout_ok, names=frozenset({"br100"}))
    assert plan(frozenset({"br100"}), have, nft_found=True) == [
        CreateHostInputTable(replace=True),
        GuardBridge("br100", add=True),
    ]
    current = [*listing[:3], *({"rule": {"chain": chain.name}} for _ in chain.rules)]
    assert parse(HOST_INPUT_TABLE, current).layout_ok
