"""What a host owes: the changes recorded for it that it has not applied, each with the
scope it asks to apply, and the rule that says which of them an apply carried out (or,
when the apply held some networks back, which it carried out all the same)."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from core.linux.scope import Scope


@dataclass(frozen=True)
class OwedChange:
    change: int
    # None: the change named nothing narrower than the whole host.
    scope: Scope | None

    @classmethod
    def from_row(cls, row: Any) -> OwedChange:
        networks = json.loads(row.networks)
        floating = json.loads(row.floating)
        vpns = json.loads(row.vpns)
        security = bool(row.security)
        if not (networks or floating or vpns or security):
            return cls(int(row.change_id), None)
        scope = Scope(
            frozenset(int(n) for n in networks),
            frozenset(str(a) for a in floating),
            security,
            frozenset(str(p) for p in vpns),
            frozenset(int(g) for g in json.loads(row.groups)),
            frozenset((str(m), str(a)) for m, a in json.loads(row.ports)),
        )
        return cls(int(row.change_id), scope)


@dataclass(frozen=True)
class Withheld:
    """What an apply held back while it applied the rest: the networks a problem of
    their own kept out; and, of the floating addresses, the apply vouches only for
    those it NATed into a network it did not hold back. Any other address may keep a
    NAT into a held network (the plan leaves those alone and does not say which)."""

    network_ids: frozenset[int]
    nated: frozenset[str]

    def touches(self, scope: Scope) -> bool:
        return bool(scope.network_ids & self.network_ids) or not scope.floating <= self.nated


@dataclass(frozen=True)
class Owed:
    host: str
    applied: int | None
    # The newest change recorded for any host.
    latest: int | None
    changes: tuple[OwedChange, ...] = ()

    @property
    def numbers(self) -> tuple[int, ...]:
        return tuple(owed.change for owed in self.changes)

    @property
    def whole_host(self) -> bool:
        return any(owed.scope is None for owed in self.changes)

    @property
    def scope(self) -> Scope | None:
        """The one scope that carries out every owed change; None: the whole host."""
        merged = Scope()
        for owed in self.changes:
            if owed.scope is None:
                return None
            merged = merged | owed.scope
        return merged

    def carried_out(self, applied: Scope | None) -> int | None:
        """The newest change an apply of ``applied`` (None: the whole host) carried out
        together with every change before it: what this host may record as applied.
        Read before the apply planned, so every change it counts is one the plan saw."""
        if applied is None:
            return self.latest
        upto = None
        for owed in self.changes:
            if owed.scope is None or not applied.covers(owed.scope):
                break
            upto = owed.change
        return upto

    def carried_out_besides(self, applied: Scope | None, withheld: Withheld) -> tuple[int, ...]:
        """The changes an apply of ``applied`` (None: the whole host) carried out although
        it held ``withheld`` back: each that it covers and that touches nothing held back.
        They are owed no longer, though changes before them may still be. A change that
        named nothing narrower than the whole host may concern what was held back: it
        stays owed."""
        return tuple(
            owed.change
            for owed in self.changes
            if owed.scope is not None
            and (applied is None or applied.covers(owed.scope))
            and not withheld.touches(owed.scope)
        )
