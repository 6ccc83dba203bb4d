"""What an apply may record as carried out of what a host owes."""

from __future__ import annotations

from core.linux.scope import Scope
from core.service.owed import Owed, OwedChange

NETWORK = Scope(network_ids=frozenset({7}))
RULE = Scope(security=True, groups=frozenset({3}))
VPN = Scope(vpns=frozenset({"alpha"}))


def _owed(*changes: tuple[int, Scope | None]) -> Owed:
    return Owed("nh1", applied=10, latest=20, changes=tuple(OwedChange(*c) for c in changes))


def test_an_apply_records_the_changes_its_scope_covers_in_order() -> None:
    owed = _owed((11, RULE), (12, NETWORK), (13, VPN))
    assert owed.scope == RULE | NETWORK | VPN
    # Everything owed, planned at once: all of it.
    assert owed.carried_out(owed.scope) == 13
    # The rule alone: the rule, and nothing after the network change it did not cover.
    assert owed.carried_out(RULE) == 11
    assert owed.carried_out(VPN) is None
    # A whole-host comparison covers everything up to the newest change anywhere.
    assert owed.carried_out(None) == 20


def test_a_change_with_no_narrower_scope_needs_the_whole_host() -> None:
    owed = _owed((11, None), (12, NETWORK))
    assert owed.whole_host and owed.scope is None
    assert owed.carried_out(NETWORK) is None
    assert owed.carried_out(None) == 20


def test_a_scope_covers_what_it_compares() -> None:
    assert Scope(frozenset({7, 8}), security=True).covers(NETWORK | RULE)
    assert not NETWORK.covers(RULE)
    assert not RULE.covers(VPN)
    assert (NETWORK | VPN).covers(VPN)
