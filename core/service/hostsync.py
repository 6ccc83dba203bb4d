"""HostSync: the one owner of "apply what this host owes".

`host apply`, auto-apply, `netcon agent` and the VPN commands all turn owed changes
into an apply here, with one rule: what the host owes is read before the plan; under
the host's apply lock the desired state is read (core.desired, one transaction),
handed to the host layer, planned and applied; afterwards the newest change the apply
carried out (with every one before it) is recorded as applied, or the failure, or the
problems that held part of it back. A change is never recorded as applied by an apply
that did not cover its scope. The host layer never goes back to the database.
"""

from __future__ import annotations

import contextlib
import gc
import logging
import threading
from collections.abc import Collection, Iterator
from typing import TYPE_CHECKING, Protocol

from core.defaults import LOCK_TIMEOUT
from core.errors import HeldBack, HostError, NetconError
from core.linux.scope import Scope
from core.linux.wanted import WholeHostNeeded

if TYPE_CHECKING:
    from core.config import Settings
    from core.linux.applylock import Holder, WaitNotice
    from core.linux.desired import DesiredHost
    from core.linux.host import HostLayer
    from core.linux.lease import Lease
    from core.linux.operations import Plan
    from core.linux.wanted import Planned
    from core.service.base import ChangeSet, Listener
    from core.service.owed import Owed, Withheld
    from core.store.db import Database

log = logging.getLogger("netcon.host")


@contextlib.contextmanager
def _collector_paused() -> Iterator[None]:
    """No cycle collection while an apply reads, plans and applies. A full plan makes
    tens of thousands of short-lived objects (freed by their counts, not by the
    collector), enough to start a full collection over everything a long-running
    process holds: at 1,000 ports that pass alone cost as much again as the nft batch.
    A command runs without the collector anyway (core.cli.collector)."""
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()


class SyncedService(Protocol):
    """What HostSync needs of the service: the database, what a host owes, and where
    it records an apply (and, on a leased host, a heartbeat)."""

    @property
    def settings(self) -> Settings: ...

    @property
    def db(self) -> Database: ...

    @property
    def listeners(self) -> list[Listener]: ...

    def owed(self, host: str) -> Owed: ...

    def record_applied(
        self,
        host: str,
        change: int | None,
        error: str | None = None,
        *,
        forgotten: Collection[int] = (),
    ) -> None: ...

    def announce_vpn_ip(self) -> None: ...

    def serving_lease(self, layer: HostLayer) -> Lease | None: ...


class HostSync:
    """Keeps one host (or rehearsal namespace) in step with what it owes.

    ``heartbeats``: an apply outside an agent (an admin's, auto-apply, a VPN command)
    records an apply, never a heartbeat, except on a leased (fenced) host, where it
    heartbeats to give what it brings up one heartbeat's lease; an agent, which
    heartbeats on its own schedule and sets the layer's lease itself, passes False.
    """

    def __init__(
        self,
        service: SyncedService,
        *,
        host: str | None = None,
        netns: str | None = None,
        heartbeats: bool = True,
        settings: Settings | None = None,
    ) -> None:
        """``settings``: the service's unless given (a rehearsal with other binaries)."""
        self.service = service
        self._given = settings
        self.host = host if host is not None else (settings or service.settings).host
        self.netns = netns
        self.heartbeats = heartbeats
        # What this host serves as of its last apply (a scoped apply patches it): an
        # agent that may no longer serve stops serving exactly this.
        self.desired: DesiredHost | None = None
        # The change the last apply recorded as carried out (with all before it).
        self.recorded: int | None = None
        self._layer: HostLayer | None = None
        self._guard = threading.Lock()

    @property
    def settings(self) -> Settings:
        """The service's settings as they are when asked, not when this was made: the
        console given `--netns` sets its namespace after the command's context has
        installed auto-apply, whose applies must happen there too."""
        base = self._given if self._given is not None else self.service.settings
        return base if base.host == self.host else base.replace(host=self.host)

    @property
    def layer(self) -> HostLayer:
        # One host layer for this object's life: its netlink socket stays open.
        if self._layer is None:
            from core.linux.host import HostLayer
            from core.linux.lease import leased

            db = self.service.db
            self._layer = HostLayer(
                self.settings,
                self.netns,
                leased=leased(self.settings.fencing, db.dialect),
                database_url=db.url,
            )
        return self._layer

    def close(self) -> None:
        if self._layer is not None:
            self._layer.close()
            self._layer = None

    def __enter__(self) -> HostSync:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- what the host owes, applied ------------------------------------------------------

    def plan(self, scope: Scope | None = None) -> Plan:
        """What an apply of ``scope`` (None: the whole host) would change here; reads
        only, and records nothing."""
        return self._planned(scope).plan

    def sync(
        self,
        scope: Scope | None = None,
        *,
        lock_timeout: float | None = LOCK_TIMEOUT,
        on_wait: WaitNotice | None = None,
    ) -> Plan:
        """Plan and apply ``scope`` under the apply lock, recording nothing (a rehearsal
        or a test drives the host this way); returns what was applied."""
        planned, held = self._sync(scope, lock_timeout, on_wait)
        if held is not None:
            raise held
        return planned.plan

    def _planned(self, scope: Scope | None) -> Planned:
        """Read what the host must have (of ``scope``), and plan it; a scope the host
        layer cannot plan alone is planned as the whole host."""
        from core.desired import read_wanted

        db = self.service.db
        if scope is not None:
            try:
                return self.layer.plan(read_wanted(db, self.settings, scope))
            except WholeHostNeeded:
                pass
        return self.layer.plan(read_wanted(db, self.settings))

    def _sync(
        self, scope: Scope | None, lock_timeout: float | None, on_wait: WaitNotice | None
    ) -> tuple[Planned, HeldBack | None]:
        """What was planned and applied, and what held part of it back (the rest went
        in): the caller records the one and raises the other."""
        from core.linux.host import need_net_admin

        need_net_admin("host apply")
        layer = self.layer
        # Held from reading the desired state until it is applied: what is applied is
        # what was read.
        with layer.lock.hold(lock_timeout, on_wait), _collector_paused():
            self.record_spooled_leases()
            planned = self._planned(scope)
            try:
                layer.execute(planned.plan)
            except HeldBack as held:
                return planned, held
        return planned, None

    def record_spooled_leases(self) -> None:
        """Record the lease events this host's dnsmasq processes could not (see
        dnsmasq.SPOOL), before the database's leases are read for a plan: a dnsmasq in a
        namespace cannot reach a PostgreSQL on the host's loopback, and one this apply
        restarts must be handed the leases it gave meanwhile. The caller holds the
        apply lock."""
        from core.linux import dnsmasq

        directory = self.layer.dhcp_dir
        lines = dnsmasq.take_spooled(directory)
        if not lines:
            return
        from core.store.leases import record_spooled
        from core.store.raw import RawDatabase, utcnow

        database = RawDatabase(self.service.db.url)
        try:
            record_spooled(database, lines, "dnsmasq", utcnow())
        finally:
            database.close()
        dnsmasq.forget_spooled(directory)

    def apply(
        self,
        scope: Scope | None = None,
        *,
        lock_timeout: float | None = LOCK_TIMEOUT,
        on_wait: WaitNotice | None = None,
    ) -> Plan:
        """Apply ``scope`` (None: compare the whole host) and record what that carried
        out of what this host owed. Raises the host's error after recording it."""
        return self._apply(self.service.owed(self.host), scope, lock_timeout, on_wait)

    def catch_up(
        self,
        *,
        full: bool = False,
        lock_timeout: float | None = LOCK_TIMEOUT,
        on_wait: WaitNotice | None = None,
    ) -> Plan | None:
        """Apply what this host owes, as narrowly as its changes allow (``full``: the
        whole host whatever it owes); None when it owed nothing and ``full`` is not set."""
        owed = self.service.owed(self.host)
        if not full and not owed.changes:
            return None
        return self._apply(owed, None if full else owed.scope, lock_timeout, on_wait)

    def _apply(
        self,
        owed: Owed,
        scope: Scope | None,
        lock_timeout: float | None,
        on_wait: WaitNotice | None,
    ) -> Plan:
        layer = self.layer
        try:
            if self.heartbeats:
                layer.lease = self.service.serving_lease(layer)
            applied, held = self._sync(scope, lock_timeout, on_wait)
        except HostError as exc:
            self._record(None, failure=exc)
            raise
        self._remember(scope, applied.desired)
        if held is not None:
            # What went in is owed no longer; what was held back stays owed, and the
            # problems are the host's error until an apply brings it in.
            carried = owed.carried_out_besides(scope, _withheld(applied))
            with contextlib.suppress(NetconError):
                self.service.record_applied(
                    self.host, None, error=held.message, forgotten=carried
                )
            raise held
        done = applied.plan
        if self.heartbeats and layer.lease is None and self.host == self.service.settings.host:
            # An apply is no heartbeat: only a running agent says the host is alive. (A
            # leased apply did heartbeat, in serving_lease: what it brought up lives
            # exactly as long as the peers may believe the host alive.)
            self.service.announce_vpn_ip()
        self.recorded = owed.carried_out(scope)
        self._record(self.recorded, problems=done.problems)
        return done

    def _remember(self, scope: Scope | None, planned: DesiredHost | None) -> None:
        """Keep the picture of what this host serves (what a port plugged later is
        matched against) up to date with what was just applied."""
        from core.linux.desired import patched

        if scope is None:
            self.desired = planned
        elif self.desired is not None and planned is not None:
            self.desired = patched(self.desired, planned)

    def _record(
        self,
        change: int | None,
        *,
        problems: tuple[str, ...] | list[str] = (),
        failure: NetconError | None = None,
    ) -> None:
        """What the apply did, as every host's record shows it: applied up to
        ``change``, or the problems that held part of it back, or the failure. Another
        apply holding the host is no failure of the host's, and recording a failure
        never hides it from the caller."""
        from core.linux.applylock import LockBusy

        if failure is None:
            error = "; ".join(problems) if problems else None
            self.service.record_applied(self.host, None if error else change, error=error)
        elif not isinstance(failure, LockBusy):
            with contextlib.suppress(NetconError):
                self.service.record_applied(self.host, None, error=failure.message)

    # -- auto-apply ------------------------------------------------------------------------

    def on_change(self, changes: ChangeSet) -> None:
        """A committed change, applied here at once when this process may change the
        host; only what it touched is planned. Without CAP_NET_ADMIN, or when the apply
        fails, it stays pending until the next apply."""
        from core.linux.host import can_change_host

        if not can_change_host():
            return
        with self._guard:
            try:
                self.apply(
                    Scope.of(changes),
                    lock_timeout=self.service.db.lock_timeout,
                    on_wait=self._waiting,
                )
            except NetconError as exc:
                log.warning("host not updated (pending until 'netcon host apply'): %s", exc)

    def _waiting(self, holder: Holder | None, waited: float) -> None:
        if waited < 2:  # said once
            log.warning("%s; waiting", self.layer.lock.busy_message(holder))


def _withheld(applied: Planned) -> Withheld:
    """What a partial apply held back: its networks (the plan names their bridges), and
    the floating addresses it NATed into the networks it brought in."""
    import ipaddress

    from core.service.owed import Withheld

    desired = applied.desired
    if desired is None:
        return Withheld(frozenset(), frozenset())
    held = [n for n in desired.networks if n.bridge in applied.plan.held]
    ranges = [ipaddress.ip_network(n.cidr) for n in held]
    nated = frozenset(
        nat.floating
        for nat in desired.floating
        if not any(ipaddress.ip_address(nat.fixed) in cidr for cidr in ranges)
    )
    return Withheld(frozenset(n.id for n in held), nated)


def install_auto_apply(service: SyncedService) -> HostSync | None:
    """With ``auto_apply`` set, have every change this service commits applied to this
    host at once. Whoever opens the service for a command installs it."""
    if not service.settings.auto_apply:
        return None
    sync = HostSync(service)
    service.listeners.append(sync.on_change)
    return sync
