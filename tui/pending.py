"""What the hosts have not applied yet, per host.

Two sources: this host's own plan (:meth:`NetconAPI.host_plan_view`, what `host apply`
would still change here, operation by operation), and for every other host what its
agent recorded (:meth:`NetconAPI.list_hosts` and :meth:`NetconAPI.pending_for`: the
changes it has not applied yet, the networks and floating IPs they touched, its last
failed apply).
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

    def count(self, host: str) -> int | None:
        plan = self.plans.get(host)
        if plan is not None:
            return len(plan.operations)
        owed = self.changes.get(host)
        return None if owed is None else len(owed.changes)

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
        numbers = ", ".join(str(n) for n in owed.changes)
        return [f"change {numbers} not yet applied by {host}'s agent"]

    def marks(self, host: str | None, subjects: Iterable[str]) -> bool:
        return bool(self.touching(host, subjects))


@dataclass(frozen=True)
class Owed:
    """The changes another host's agent has not applied, and the floating addresses and
    bridges they touched (the names rows are marked by)."""

    changes: tuple[int, ...]
    subjects: frozenset[str] = frozenset()


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
    """``own`` (this host's plan) and, for every other host, what its agent recorded."""
    changes: dict[str, Owed] = {}
    failed: dict[str, str] = {}
    try:
        others = [h for h in api.list_hosts() if h.name not in own.plans]
        bridges = {n.id: n.bridge for n in api.list_networks()} if others else {}
        for other in others:
            if other.last_error:
                failed[other.name] = other.last_error
            if not other.pending:
                changes[other.name] = Owed(())
                continue
            owed = api.pending_for(other.name)
            subjects = {bridges[n] for n in owed.network_ids if n in bridges}
            changes[other.name] = Owed(owed.changes, frozenset(subjects | set(owed.floating)))
    except NetconError:
        pass  # the database is away: every view says so itself; this host's plan stands
    return replace(own, changes=changes, failed=failed)
