"""This network host's side: plan and apply the desired state onto the kernel."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from core.defaults import LOCK_TIMEOUT
from core.service.agents import AgentService
from core.views import PlannedOperation, PlanView

if TYPE_CHECKING:
    from core.linux.operations import Operation, Plan


class HostService(AgentService):
    def host_plan(self, netns: str | None = None) -> Plan:
        """What `host apply` would change on this host, or in namespace ``netns`` (a rehearsal).

        Reads only: links, addresses, the nftables table and dnsmasq's files.
        """
        from core.service.hostsync import HostSync

        with HostSync(self, netns=netns) as sync:
            return sync.plan()

    def host_apply(
        self,
        netns: str | None = None,
        *,
        lock_timeout: float | None = LOCK_TIMEOUT,
        on_wait: Callable[[Any, float], None] | None = None,
    ) -> Plan:
        """Make the host match the database; returns what was done. Marks this host alive.

        One apply at a time: this waits up to ``lock_timeout`` seconds (0: not at all)
        for another to finish, calling ``on_wait(holder, waited)`` every second of it
        (holder: core.linux.applylock.Holder, or None if it has not said yet), and
        raises core.linux.applylock.LockBusy (a HostError) when the time is up.
        """
        from core.service.hostsync import HostSync

        with HostSync(self, netns=netns) as sync:
            return sync.apply(lock_timeout=lock_timeout, on_wait=on_wait)

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
    return PlanView(
        host=host,
        operations=tuple(
            PlannedOperation(operation.describe(), tuple(sorted(_subjects(operation))))
            for operation in plan.operations
        ),
        problems=tuple(plan.problems),
        partial=plan.partial,
        warnings=tuple(plan.warnings),
    )


def _subjects(operation: Operation) -> set[str]:
    """The names an operation acts on: its short text fields, the address and MAC
    tokens of a hosts file or a lease list. Command lines are left out."""
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
    return found
