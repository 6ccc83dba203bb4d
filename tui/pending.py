"""What the hosts have not applied yet, per host.

How much a host owes is one number everywhere, the count of changes it has not applied
(:meth:`NetconAPI.pending_overview`, the PENDING of `netcon host list`): the header and
the hosts view show it for every host, this one included. Which rows those changes
touch comes from two sources: this host's own plan (:meth:`NetconAPI.host_plan_view`,
what `host apply` would still change here, operation by operation), and for every
other host what its agent recorded (the networks and floating IPs its changes touched,
its last failed apply).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING

from core.errors import NetconError

if TYPE_CHECKING:
    from core.service.api import NetconAPI
    from core.views import PlanView


@dataclass(frozen=True)
class Pending:
    """Each known host's outstanding plan; ``errors`` for hosts that could not be read."""

    plans: dict[str, PlanView] = field(default_factory=dict)
    errors: dict[str, str] = field(default_factory=dict)
    known: bool = True  # False until read, and when reading is turned off
    # Other hosts, from what their agents recorded: the changes each still owes...
    changes: dict[str, Owed] = field(default_factory=dict)
    # ...and the last apply that failed there.
    failed: dict[str, str] = field(default_factory=dict)
    # The changes each host has not applied yet (`host list`'s PENDING), every host.
    counts: dict[str, int] | None = None

    def count(self, host: str) -> int | None:
        """The changes ``host`` has not applied yet; None while that is not known."""
        if self.counts is None:
            return None
        return self.counts.get(host, 0)

    def touching(self, host: str | None, subjects: Iterable[str]) -> list[str]:
        """What ``host`` still owes that acts on any of ``subjects``."""
        wanted = set(subjects)
        if not wanted:
            return []
        plan = self.plans.get(host or "")
        if plan is not None:
            return [op.text for op in plan.operations if wanted.intersection(op.subjects)]
        owed = self.changes.get(host or "")
        if owed is None or not wanted.intersection(owed.subjects):
            return []
        waited_for = [n for n, names in owed.touched if wanted.intersection(names)]
        numbers = ", ".join(str(n) for n in waited_for or owed.changes)
        return [f"change {numbers} not yet applied by {host}'s agent"]

    def held(self, host: str | None, subjects: Iterable[str]) -> list[str]:
        """The problems of ``host``'s plan that hold back a network among ``subjects``:
        it has no operation for it, yet the host owes it."""
        plan = self.plans.get(host or "")
        if plan is None or not plan.held:
            return []
        wanted = set(subjects)
        named = [p for p in plan.problems if wanted.intersection(_words(p))]
        if named or not wanted.intersection(plan.held):
            return named
        return list(plan.problems)

    def marks(self, host: str | None, subjects: Iterable[str]) -> bool:
        return bool(self.touching(host, subjects) or self.held(host, subjects))

    def owing(self, subjects: Iterable[str]) -> dict[str, list[str]]:
        """Every host that still owes something acting on any of ``subjects`` (a
        security group's filter lives on every host its members run on), and what."""
        wanted = tuple(subjects)
        found: dict[str, list[str]] = {}
        for host in sorted({*self.plans, *self.changes}):
            lines = self.touching(host, wanted)
            if lines:
                found[host] = lines
        return found


@dataclass(frozen=True)
class Owed:
    """The changes another host's agent has not applied, and the floating addresses,
    bridges, security groups, instance ports and added rules they touched (the names
    rows are marked by)."""

    changes: tuple[int, ...]
    subjects: frozenset[str] = frozenset()
    # Change by change, the names it touched: the changes a row waits for.
    touched: tuple[tuple[int, frozenset[str]], ...] = ()


def _words(text: str) -> set[str]:
    """The names a problem's text mentions ("network 10.0.2.0/24: br102 exists ...")."""
    return {word.strip(":;,.()'\"") for word in text.split()}


UNKNOWN = Pending(known=False)

PendingSource = Callable[["NetconAPI"], Pending]


def read_pending(api: NetconAPI) -> Pending:
    """This host's plan (it only reads netlink, nftables and dnsmasq's files), and what
    the other hosts' agents recorded."""
    host = api.settings.host
    try:
        own = Pending(plans={host: api.host_plan_view()})
    except NetconError as exc:
        own = Pending(errors={host: exc.message})
    except OSError as exc:
        own = Pending(errors={host: str(exc)})
    return with_agents(api, own)


def with_agents(api: NetconAPI, own: Pending) -> Pending:
    """``own`` (this host's plan) and, for every host, the changes it owes (one read
    however many hosts there are); for every other host also what they touched."""
    changes: dict[str, Owed] = {}
    failed: dict[str, str] = {}
    try:
        overview = api.pending_overview()
    except NetconError:
        return own  # the database is away: every view says so itself; the plan stands
    counts = {host.name: host.pending for host in overview.hosts}
    for other in overview.hosts:
        if other.name in own.plans or other.name in own.errors:
            continue  # this host: its own plan says more than its record
        if other.last_error:
            failed[other.name] = other.last_error
        owed = overview.owed.get(other.name)
        if owed is None:
            changes[other.name] = Owed(())
        else:
            touched = tuple((n, frozenset(names)) for n, names in owed.touched)
            subjects = frozenset().union(*(names for _, names in touched))
            changes[other.name] = Owed(owed.changes, subjects, touched)
    return replace(own, changes=changes, failed=failed, counts=counts)
