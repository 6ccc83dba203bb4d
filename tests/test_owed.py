"""What an apply may record as carried out of what a host owes."""

from __future__ import annotations

from core.linux.scope import Scope
from core.service.owed import Owed, OwedChange, Withheld

NETWORK = Scope(network_ids=frozenset({7}))
RULE = Scope(security=True, filter_groups=frozenset({3}))
PORT = Scope(security=True, filter_ports=frozenset({("fa:16:3e:00:00:01", "10.0.0.5")}))
FILTER = Scope(security=True)
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
    # A network's apply compares the whole filter (its DHCP servers and ports are in it).
    assert NETWORK.covers(RULE) and not RULE.covers(NETWORK)
    assert not RULE.covers(VPN)
    assert (NETWORK | VPN).covers(VPN)


def test_a_filter_compared_at_keys_covers_those_keys_only() -> None:
    assert (RULE | PORT).covers(RULE) and (RULE | PORT).covers(PORT)
    assert not RULE.covers(PORT)
    # The whole filter compared covers a change at any keys, not the other way round.
    assert FILTER.covers(RULE) and not RULE.covers(FILTER)
    # Merged with "the filter changed, unknown where", or with a network's change
    # (whose filter elements no key names), the keys are dropped.
    assert RULE | FILTER == FILTER
    assert not (RULE | NETWORK).filter_keyed and (RULE | NETWORK).whole_filter
    # A terminated port's change names its network and its keys: it stays keyed.
    gone = Scope(frozenset({7}), security=True, filter_ports=PORT.filter_ports)
    assert (PORT | gone).filter_keyed


def test_an_owed_rule_change_is_applied_at_its_keys() -> None:
    owed = _owed((11, RULE), (12, PORT))
    assert owed.scope == RULE | PORT and owed.scope.filter_keyed
    assert owed.carried_out(owed.scope) == 12
    assert owed.carried_out(RULE) == 11


def test_an_apply_that_held_a_network_back_carried_out_the_rest() -> None:
    """A partial apply: every covered change that touches neither the held network nor
    a floating address the apply did not NAT elsewhere is owed no more, wherever it
    stands in the order; a change that asks for the whole host stays owed."""
    other = Scope(network_ids=frozenset({8}), security=True)
    nated = Scope(floating=frozenset({"203.0.113.4"}))
    into_held = Scope(floating=frozenset({"203.0.113.1"}))
    owed = _owed(
        (11, NETWORK), (12, other), (13, nated), (14, into_held), (15, RULE), (16, None)
    )
    withheld = Withheld(network_ids=frozenset({7}), nated=frozenset({"203.0.113.4"}))
    assert owed.carried_out_besides(None, withheld) == (12, 13, 15)
    # A narrower apply carries out only what it covers.
    assert owed.carried_out_besides(nated, withheld) == (13,)
    # Nothing held back that a change touches: all it covers.
    nothing = Withheld(network_ids=frozenset({9}), nated=frozenset({"203.0.113.1", "203.0.113.4"}))
    assert owed.carried_out_besides(None, nothing) == (11, 12, 13, 14, 15)
