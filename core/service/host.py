"""This network host's side: plan and apply the desired state onto the kernel."""

from __future__ import annotations

import dataclasses
import functools
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

from sqlalchemy import delete, or_, select

from core.defaults import LOCK_TIMEOUT
from core.errors import HostError
from core.secrules import rule_subject
from core.service.part import Part
from core.store.schema import host_changes, hosts

# The views are imported where they are made: `host plan` and `host apply` print the
# plan itself.
if TYPE_CHECKING:
    from core.linux.operations import Operation, Plan
    from core.service.agents import AgentsPart
    from core.service.base import ChangeSet, ServiceContext
    from core.views import OwingView, PlanView


class HostPart(Part):
    """This host's side: HostSync is handed the agents' part, which says what the
    host owes and records what it applied."""

    def __init__(self, context: ServiceContext, agents: AgentsPart) -> None:
        super().__init__(context)
        self._agents = agents

    def host_plan(self, netns: str | None = None) -> Plan:
        """What `host apply` would change on this host, or in namespace ``netns`` (a rehearsal).

        Reads only: links, addresses, the nftables table and dnsmasq's files.
        """
        from core.service.hostsync import HostSync

        with HostSync(self._agents, netns=netns) as sync:
            return sync.plan()

    def host_apply(
        self,
        netns: str | None = None,
        *,
        lock_timeout: float | None = LOCK_TIMEOUT,
        on_wait: Callable[[Any, float], None] | None = None,
    ) -> Plan:
        """Make the host match the database; returns what was done, recorded as an
        apply (not as a heartbeat, unless the apply gives out a lease: see serving_lease).

        One apply at a time: this waits up to ``lock_timeout`` seconds (0: not at all)
        for another to finish, calling ``on_wait(holder, waited)`` every second of it
        (holder: core.linux.applylock.Holder, or None if it has not said yet), and
        raises core.linux.applylock.LockBusy (a HostError) when the time is up.
        """
        from core.service.hostsync import HostSync

        with HostSync(self._agents, netns=netns) as sync:
            return sync.apply(lock_timeout=lock_timeout, on_wait=on_wait)

    def owing(self, made: Sequence[ChangeSet], *, look_here: bool = False) -> OwingView:
        """Which hosts still owe the changes ``made`` (as tracking_changes gathered
        them), and which had work for them and did it.

        With ``look_here``, this host is asked as well, when it may be: if the plan of
        what those changes touched is empty here (a floating IP disassociated that was
        never NATed, a network deleted that never had a bridge), the changes owe this
        host nothing, and they are recorded so: `host list` and the console stop
        counting them. A plan that cannot be read, or a process that could not read
        all of it (no CAP_NET_ADMIN), leaves them pending."""
        from core.views import OwingView

        numbers = tuple(sorted({c.change for c in made if c.change is not None}))
        named: set[str] = set()
        for changes in made:
            named |= changes.hosts
        if not numbers or not named:
            return OwingView(numbers)
        with self.db.read() as connection:
            owing = set(
                connection.execute(
                    select(host_changes.c.host)
                    .select_from(
                        host_changes.outerjoin(hosts, hosts.c.name == host_changes.c.host)
                    )
                    .where(
                        host_changes.c.change_id.in_(numbers),
                        or_(
                            hosts.c.applied_change.is_(None),
                            host_changes.c.change_id > hosts.c.applied_change,
                        ),
                    )
                    .distinct()
                ).scalars()
            )
        here = self.settings.host
        nothing_here = look_here and here in owing and self._nothing_to_do_here(made)
        if nothing_here:
            with self.db.write() as connection:
                connection.execute(
                    delete(host_changes).where(
                        host_changes.c.host == here, host_changes.c.change_id.in_(numbers)
                    )
                )
            owing.discard(here)
        applied = named - owing - ({here} if nothing_here else set())
        return OwingView(numbers, tuple(sorted(owing)), tuple(sorted(applied)))

    def _nothing_to_do_here(self, made: Sequence[ChangeSet]) -> bool:
        from core.linux.host import can_change_host
        from core.linux.scope import Scope
        from core.service.hostsync import HostSync

        if not can_change_host():
            return False  # netcon's tables cannot be read: the plan would leave them out
        merged = functools.reduce(lambda a, b: a | b, made)
        scope = Scope.of(merged)
        with HostSync(self._agents) as sync:
            try:
                plan = sync.plan(scope if scope else None)
            except (HostError, OSError):
                return False
        return not plan.operations and not plan.problems

    def host_plan_view(self, netns: str | None = None) -> PlanView:
        """:meth:`host_plan` as a view: its lines, its problems and what it acts on."""
        return _plan_view(self.settings.host, self.host_plan(netns))

    def host_apply_view(
        self,
        netns: str | None = None,
        *,
        lock_timeout: float | None = LOCK_TIMEOUT,
        on_wait: Callable[[Any, float], None] | None = None,
    ) -> PlanView:
        """:meth:`host_apply` as a view of what was done."""
        done = self.host_apply(netns, lock_timeout=lock_timeout, on_wait=on_wait)
        return _plan_view(self.settings.host, done)


def _plan_view(host: str, plan: Plan) -> PlanView:
    from core.views import PlannedOperation, PlanView

    return PlanView(
        host=host,
        operations=tuple(
            PlannedOperation(operation.describe(), tuple(sorted(_subjects(operation))))
            for operation in plan.operations
        ),
        problems=tuple(plan.problems),
        partial=plan.partial,
        warnings=tuple(plan.warnings),
        held=tuple(sorted(plan.held)),
    )


def _subjects(operation: Operation) -> set[str]:
    """The names an operation acts on: its short text fields, the address and MAC
    tokens of a hosts file or a lease list, the security groups a port joins or leaves,
    and a group's rule as "project/group: what from where". Command lines are left
    out."""
    found: set[str] = set()
    for field in dataclasses.fields(operation):
        if field.name == "argv":
            continue
        value = getattr(operation, field.name)
        if isinstance(value, str):
            found.update(token for token in value.replace(",", " ").split() if token)
        elif isinstance(value, tuple):
            for item in value:
                if isinstance(item, tuple):
                    found.update(str(part) for part in item)
                elif isinstance(item, str):
                    found.add(item)
    label, words = getattr(operation, "label", None), getattr(operation, "words", None)
    if isinstance(label, str) and isinstance(words, str):
        found.add(rule_subject(label, words))
    return found
