"""This network host's side: plan and apply the desired state onto the kernel."""

from __future__ import annotations

import dataclasses
import functools
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

from sqlalchemy import bindparam, delete, or_, select, update

from core import validate
from core.defaults import LOCK_TIMEOUT
from core.errors import HostError
from core.secrules import rule_subject
from core.service.agents import AgentService
from core.store.schema import host_changes, hosts
from core.views import OwingView, PlannedOperation, PlanView

if TYPE_CHECKING:
    from core.linux.host import HostLayer
    from core.linux.lease import Lease
    from core.linux.operations import Operation, Plan
    from core.service.base import ChangeSet


class HostService(AgentService):
    def heartbeat(self, host: str | None = None) -> None:
        """Mark a network host alive; the host layer calls this on every apply. This
        host also says where VPN clients reach it (its vpn_ip), so that a VPN answers
        at the address of whichever host serves its network.

        Every agent does this every heartbeat_interval, so it is one statement (on
        PostgreSQL one round trip, no BEGIN or COMMIT): its own row, made if missing,
        and nothing that wakes another host."""
        name = validate.host_name("host", host if host is not None else self.settings.host)
        values: dict[str, Any] = {"name": name, "now": self.clock()}
        own = name == self.settings.host
        if own:
            values["vpn_ip"] = self.settings.vpn_ip
        with self.db.single(write=True) as connection:
            connection.execute(_heartbeat_statement(self.db.dialect, with_vpn_ip=own), values)

    def _announce_vpn_ip(self) -> None:
        """This host's row, with the address its VPN clients reach it at, and its
        heartbeat left as it was."""
        name = self.settings.host
        with self.db.write() as connection:
            changed = connection.execute(
                update(hosts).where(hosts.c.name == name).values(vpn_ip=self.settings.vpn_ip)
            ).rowcount
            if not changed:
                self._ensure_host(connection, name)

    def serving_lease(self, layer: HostLayer) -> Lease | None:
        """The lease an apply outside an agent gives what it brings up, when addresses
        carry one here (fencing): one heartbeat's worth, from a heartbeat made now. An
        admin's apply marks the host alive, and what it serves lasts exactly as long as
        the peers believe that; `netcon agent` renews it from then on."""
        from core.linux import lease

        if not layer.leased:
            return None
        sent = lease.clock()
        self.heartbeat()
        return lease.Lease.from_heartbeat(sent, self.settings.host_down_time)

    def host_plan(self, netns: str | None = None) -> Plan:
        """What `host apply` would change on this host, or in namespace ``netns`` (a rehearsal).

        Reads only: links, addresses, the nftables table and dnsmasq's files.
        """
        from core.linux.host import HostLayer

        layer = HostLayer(self.settings, self.db, netns=netns)
        try:
            return layer.plan()
        finally:
            layer.close()

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
        from core.linux.host import HostLayer

        # Read before the plan, so every change recorded as applied is one it saw.
        owed = self.pending_for(self.settings.host).changes
        layer = HostLayer(self.settings, self.db, netns=netns)
        try:
            layer.lease = self.serving_lease(layer)
            done = layer.sync(lock_timeout=lock_timeout, on_wait=on_wait)
        except HostError as exc:
            self.record_applied_here(None, failure=exc)
            raise
        finally:
            layer.close()
        if layer.lease is None:
            # An apply is no heartbeat: only a running agent says the host is alive.
            # (A leased apply did heartbeat, in serving_lease: what it brought up lives
            # exactly as long as the peers may believe the host alive.)
            self._announce_vpn_ip()
        # What this host owes is shown the same whoever applied it: an agent or an admin.
        self.record_applied_here(max(owed) if owed else None, problems=done.problems)
        return done

    def owing(self, made: Sequence[ChangeSet], *, look_here: bool = False) -> OwingView:
        """Which hosts still owe the changes ``made`` (as tracking_changes gathered
        them), and which had work for them and did it.

        With ``look_here``, this host is asked as well, when it may be: if the plan of
        what those changes touched is empty here (a floating IP disassociated that was
        never NATed, a network deleted that never had a bridge), the changes owe this
        host nothing, and they are recorded so: `host list` and the console stop
        counting them. A plan that cannot be read, or a process that could not read
        all of it (no CAP_NET_ADMIN), leaves them pending."""
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
        from core.linux.host import HostLayer, can_change_host
        from core.linux.scope import Scope

        if not can_change_host():
            return False  # netcon's tables cannot be read: the plan would leave them out
        merged = functools.reduce(lambda a, b: a | b, made)
        scope = Scope.of(merged)
        layer = HostLayer(self.settings, self.db)
        try:
            plan = layer.plan(scope=scope if scope else None)
        except (HostError, OSError):
            return False
        finally:
            layer.close()
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


@functools.cache
def _heartbeat_statement(dialect: str, *, with_vpn_ip: bool) -> Any:
    """INSERT of the host's row that, when the row is there, sets its heartbeat alone
    (and, from the host itself, the address its VPN clients reach it at)."""
    # Each dialect's insert is imported only where used: PostgreSQL's costs 50 ms.
    if dialect == "postgresql":
        from sqlalchemy.dialects.postgresql import insert as pg_insert

        statement: Any = pg_insert(hosts)
    else:
        from sqlalchemy.dialects.sqlite import insert as sqlite_insert

        statement = sqlite_insert(hosts)
    values: dict[str, Any] = {
        "name": bindparam("name"),
        "role": "network",
        "last_heartbeat": bindparam("now", type_=hosts.c.last_heartbeat.type),
    }
    if with_vpn_ip:
        values["vpn_ip"] = bindparam("vpn_ip")
    statement = statement.values(**values)
    kept = ["last_heartbeat", "vpn_ip"] if with_vpn_ip else ["last_heartbeat"]
    return statement.on_conflict_do_update(
        index_elements=["name"], set_={name: statement.excluded[name] for name in kept}
    )


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
