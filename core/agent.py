"""`netcon agent`: keeps one network host equal to the database, for as long as it runs.

It wakes on change, not on a timer: on PostgreSQL every committed change NOTIFYs the
hosts it concerns and the agent LISTENs, or, with a broker set (``bus``), it subscribes
to its host's subject there (core.bus); on SQLite (one host) it watches the file's
commit counter (``PRAGMA data_version``). A change for another host wakes it but starts
no apply. A slow re-sync catches anything a lost notification hid. It heartbeats,
records what it applied (or why it could not), and renews the heartbeat lease of what
this host serves (core.linux.lease: the kernel deletes gateway and floating addresses
whose lease ran out, whatever became of this process). When it finds its lease lapsed
(the database out of reach, or this process paused past it) it stops serving (gateway
addresses, DHCP, NAT and VPN servers go) before it heartbeats again, then reads
everything afresh: a host its peers declared dead never answers beside the host that
took over.
"""

from __future__ import annotations

import contextlib
import json
import logging
import sqlite3
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Protocol

from core import validate
from core.defaults import STOP_WAIT
from core.errors import DatabaseError, HeldBack, HostError, InvalidInput, NetconError
from core.linux import lease as leases
from core.linux import namespace
from core.linux.lease import Lease, LeaseLapsed
from core.linux.scope import Scope
from core.service.hostsync import HostSync

if TYPE_CHECKING:
    from core.linux.applylock import Holder
    from core.linux.host import HostLayer
    from core.service import NetconService

log = logging.getLogger("netcon.agent")

# How often an idle SQLite watcher looks at the commit counter.
SQLITE_POLL = 0.05
# How long the bridge port watcher waits for link events before it looks at the stop.
PORT_WAIT = 0.5


class ChangeWatch(Protocol):
    def wait(self, timeout: float, stop: threading.Event | None = None) -> bool:
        """Block up to ``timeout`` seconds, or until ``stop`` is set; True when a change
        may concern this host."""

    def close(self) -> None: ...


class PostgresWatch:
    """LISTEN on the change channel; wake only for changes that name this host."""

    def __init__(self, url: str, host: str, channel: str) -> None:
        import psycopg

        self.url = url.replace("postgresql+psycopg://", "postgresql://")
        self.host = host
        self.channel = channel
        try:
            self.connection = psycopg.connect(
                self.url, autocommit=True, application_name=f"netcon agent {host}"[:63]
            )
            self.connection.execute(f"LISTEN {channel}")
        except psycopg.Error as exc:
            raise DatabaseError(f"cannot listen for changes: {exc}") from None

    def wait(self, timeout: float, stop: threading.Event | None = None) -> bool:
        import psycopg

        deadline = time.monotonic() + max(timeout, 0.0)
        try:
            # notifies() yields each notice as it arrives and ends only at its timeout:
            # leave it at the first notice for this host. Waited for in slices, so that
            # a stop is seen (a notice between two slices waits on the connection).
            while True:
                left = max(deadline - time.monotonic(), 0.0)
                part = left if stop is None else min(left, STOP_WAIT)
                with contextlib.closing(self.connection.notifies(timeout=part)) as notices:
                    if any(self._concerns_us(notice.payload) for notice in notices):
                        break
                if part >= left or (stop is not None and stop.is_set()):
                    return False
            # Take what else has already arrived: a burst of changes is one apply.
            with contextlib.closing(self.connection.notifies(timeout=0.0)) as rest:
                for _ in rest:
                    pass
        except psycopg.Error as exc:
            raise DatabaseError(f"lost the change notifications: {exc}") from None
        return True

    def _concerns_us(self, payload: str) -> bool:
        try:
            return self.host in json.loads(payload).get("hosts", [])
        except ValueError:
            return True  # unreadable: look for ourselves

    def close(self) -> None:
        self.connection.close()


class SqliteWatch:
    """Poll the database file's commit counter: it changes with every other writer's
    commit, and reading it touches no table."""

    def __init__(self, path: str) -> None:
        self.connection = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
        self.version = self._version()

    def _version(self) -> int:
        return int(self.connection.execute("PRAGMA data_version").fetchone()[0])

    def wait(self, timeout: float, stop: threading.Event | None = None) -> bool:
        deadline = time.monotonic() + timeout
        while True:
            current = self._version()
            if current != self.version:
                self.version = current
                return True
            left = deadline - time.monotonic()
            if left <= 0:
                return False
            if stop is None:
                time.sleep(min(SQLITE_POLL, left))
            elif stop.wait(min(SQLITE_POLL, left)):
                return False

    def close(self) -> None:
        self.connection.close()


class PollWatch:
    """Look at the database every ``period`` seconds instead of listening: what an agent
    without notifications would do. Kept as the baseline the notified agent is measured
    against (`netcon agent --poll SECONDS`)."""

    def __init__(self, period: float) -> None:
        self.period = period

    def wait(self, timeout: float, stop: threading.Event | None = None) -> bool:
        period = max(min(self.period, timeout), 0.0)
        if stop is None:
            time.sleep(period)
        else:
            stop.wait(period)
        return True

    def close(self) -> None:
        pass


@dataclass
class AgentState:
    """What an agent knows between wake-ups."""

    last_heartbeat: float = 0.0
    last_resync: float = 0.0
    # Until when this host may serve: from the last heartbeat the database took.
    lease: Lease | None = None
    fenced: bool = False
    failures: int = 0


class Agent:
    def __init__(
        self,
        service: NetconService,
        host: str,
        netns: str | None = None,
        *,
        resync: float | None = None,
        on_apply: Callable[[str], None] | None = None,
        poll: float | None = None,
    ) -> None:
        self.service = service
        self.host = host
        self.netns = netns
        settings = service.settings
        self.poll = poll
        self.resync = float(resync if resync is not None else settings.agent_resync)
        # How long a heartbeat lets this host serve, and whether its addresses carry
        # that lease (see core.linux.lease).
        self.lease_seconds = float(settings.host_down_time)
        self.leased = leases.leased(settings.fencing, service.db.dialect)
        every = settings.heartbeat_interval
        self.heartbeat_every = (
            float(every) if every is not None else max(1.0, self.lease_seconds / 4)
        )
        self.on_apply = on_apply or (lambda line: log.info("%s", line))
        self.state = AgentState()
        self.watch: ChangeWatch | None = None
        # What stops run(), which a wait for a change looks at too.
        self._stop: threading.Event | None = None
        # Every apply goes through the host's one HostSync, which keeps one host layer
        # for the agent's life: its netlink socket stays open and its copy of the
        # kernel's links is kept current by notifications. The agent heartbeats itself.
        self.sync = HostSync(service, host=host, netns=netns, heartbeats=False)

    @property
    def layer(self) -> HostLayer:
        return self.sync.layer

    # -- the loop -------------------------------------------------------------------

    def run(self, stop: threading.Event) -> None:
        # An agent that would refuse what it was given must not heartbeat first: its
        # host would be shown alive by an agent that never ran.
        validate.host_name("host", self.host)
        if self.heartbeat_every >= self.lease_seconds:
            raise InvalidInput(
                "heartbeat_interval",
                f"{self.heartbeat_every:g} s must be shorter than host_down_time "
                f"({self.lease_seconds:g} s), or every host is shown down between its "
                "heartbeats",
            )
        where = self.netns if self.netns is not None else self.service.settings.netns
        namespace.check_netns(where)
        self._stop = stop
        self.on_apply(f"agent for host {self.host} started")
        ports = threading.Thread(
            target=self._watch_ports, args=(stop, where), name="netcon-ports", daemon=True
        )
        ports.start()
        try:
            while not stop.is_set():
                woke = self._step()
                if stop.is_set():
                    break
                if woke is None:  # the database is away: try again shortly
                    stop.wait(min(0.5 * self.state.failures, 5.0))
                    continue
        finally:
            if self.watch is not None:
                self.watch.close()
            ports.join(timeout=PORT_WAIT * 4)
            self.sync.close()
            # Stopped (SIGTERM from its unit, ctrl+c): what it serves is left to its
            # lease, so a restart within it changes nothing for the guests, and a stop
            # ends it exactly when the peers may take the host's networks over.
            lease = self.state.lease
            if lease is not None and self.leased and not self.state.fenced:
                left = max(lease.remaining(), 0.0)
                self.on_apply(
                    f"agent for host {self.host} stopped; what it serves lasts until its "
                    f"heartbeat lease ends in {left:.0f} s"
                )
            else:
                self.on_apply(f"agent for host {self.host} stopped")

    def _step(self) -> bool | None:
        """One round: (re)connect, heartbeat, apply what is due, wait for a change."""
        now = time.monotonic()
        try:
            # A lease that ran out (this process paused, the database slow or away) is
            # seen to before anything else, above all before the next heartbeat: the host
            # may have been evacuated meanwhile, so it stops serving first, then reads
            # everything afresh.
            lapsed = self._lapsed()
            if lapsed and not self.state.fenced:
                self._fence()
            if self.watch is None:
                self.watch = self._connect()
                self.state.last_resync = 0.0  # after a gap, look at everything
            afresh = lapsed or self.state.fenced
            if afresh or now - self.state.last_heartbeat >= self.heartbeat_every:
                self._heartbeat(now, afresh=afresh)
                # A dead host is looked for as often as this one says it is alive, so
                # its networks move within a heartbeat of host_down_time, not a re-sync.
                self._evacuate_down_hosts()
            # Until one whole-host apply has succeeded the agent has no picture of what
            # the host serves (new ports would find no network): it keeps trying whole.
            if now - self.state.last_resync >= self.resync or self.sync.desired is None:
                self._apply(full=True)
                self.state.last_resync = time.monotonic()
            else:
                self._apply(full=False)
            timeout = min(
                self.heartbeat_every - (time.monotonic() - self.state.last_heartbeat),
                self.resync - (time.monotonic() - self.state.last_resync),
            )
            return self.watch.wait(max(timeout, 0.0), self._stop)
        except DatabaseError as exc:
            self._database_lost(exc)
            return None

    def _heartbeat(self, now: float, *, afresh: bool) -> None:
        """Renew the heartbeat, then the lease of what this host serves; after a lapse,
        read everything afresh instead (it may have moved to another host)."""
        sent = leases.clock()
        self.service.heartbeat(self.host)
        self.state.lease = Lease.from_heartbeat(sent, self.lease_seconds)
        self.layer.lease = self.state.lease
        self.state.last_heartbeat = now
        self.state.failures = 0
        if afresh:
            self.state.fenced = False
            self.state.last_resync = 0.0
            self.on_apply("heartbeat renewed: reading what this host serves afresh")
        else:
            self._renew()

    def _lapsed(self) -> bool:
        return self.state.lease is not None and self.state.lease.lapsed()

    def _renew(self) -> None:
        """Extend what this host serves to the lease just renewed."""
        lease = self.state.lease
        if lease is None or not self.leased:
            return
        try:
            renewal = self.layer.renewal()
            if renewal:
                # Waiting for another apply no longer than the lease lasts.
                self.layer.apply(renewal, lock_timeout=max(lease.remaining(), 0.0))
        except LeaseLapsed:
            self._fence()
        except HostError as exc:
            self.on_apply(f"could not renew the heartbeat lease of this host's addresses: {exc}")

    def _connect(self) -> ChangeWatch:
        db = self.service.db
        if self.poll is not None:
            return PollWatch(self.poll)
        bus = self.service.settings.bus
        if bus is not None:
            from core.bus import BusWatch

            return BusWatch(bus, self.host, self.service.settings.bus_poll, on_state=self.on_apply)
        if db.dialect == "postgresql":
            from core.service.base import CHANGES_CHANNEL

            # Through the pool first: during a failover it waits for the new primary,
            # where the LISTEN's own connection would fail and the agent back off.
            db.reach()
            return PostgresWatch(db.url, self.host, CHANGES_CHANNEL)
        if db.path is None:
            raise DatabaseError("an agent needs a database file or a PostgreSQL server")
        return SqliteWatch(str(db.path))

    def _apply(self, *, full: bool) -> None:
        """Apply the changes pending on this host (or, on a re-sync, everything)."""
        try:
            # One apply at a time on a host: the same lock as `host apply` and the
            # console's, held from reading the desired state until it is applied. Only
            # what the pending changes touched is planned: the cost of the change, not
            # of the host.
            done = self.sync.catch_up(
                full=full, lock_timeout=self.service.db.lock_timeout, on_wait=self._waiting
            )
        except LeaseLapsed:
            self._fence()
            return
        except HeldBack as exc:
            # The rest went in and is recorded; only the held networks stay owed.
            self.on_apply(f"applied all but what is held back (pending): {exc.message}")
            return
        except HostError as exc:
            self.on_apply(f"apply failed (pending until the next try): {exc.message}")
            return
        if done is None:
            return
        # Every apply a change woke is said, even one with nothing left to do: the log
        # shows which changes reached this host and when.
        if done or not full:
            upto = self.sync.recorded
            count = f"{len(done.operations)} operation(s)"
            if upto is None:
                # A re-sync that found the host short of what no owed change names (a
                # port plugged while no agent ran, a change made by hand).
                self.on_apply(f"re-sync applied what the host lacked: {count}")
            else:
                self.on_apply(f"applied change {upto}: {count}")

    def _watch_ports(self, stop: threading.Event, netns: str | None) -> None:
        """A port plugged into one of this host's bridges gets what its network's plan
        gives a port (MTU, hairpin, its filter) at once, not at the next change: its
        network is applied through HostSync like any change, with a HostSync of its
        own (its own netlink socket), taking turns with the agent's under the host's
        apply lock."""
        from core.linux.portwatch import PortWatch

        try:
            watch = PortWatch(netns)
        except HostError as exc:
            self.on_apply(f"not watching bridge ports: {exc.message}")
            return
        sync = HostSync(self.service, host=self.host, netns=self.netns, heartbeats=False)
        try:
            while not stop.is_set():
                joined = watch.wait(PORT_WAIT)
                if joined and not stop.is_set():
                    self._ports_joined(sync, joined)
        finally:
            watch.close()
            sync.close()

    def _ports_joined(self, sync: HostSync, joined: dict[str, str]) -> None:
        # What this host serves as of its last apply: only its instances' ports on its
        # own bridges count (not the links its own applies enslave), and nothing is
        # brought up before the agent's first apply or while it is fenced.
        desired = self.sync.desired
        if desired is None or self.state.fenced:
            return
        ids = frozenset(
            n.id for n in desired.networks for port in n.ports if joined.get(port) == n.bridge
        )
        if not ids:
            return
        sync.layer.lease = self.state.lease
        try:
            done = sync.apply(Scope(network_ids=ids), lock_timeout=self.service.db.lock_timeout)
        except NetconError as exc:
            # A lapsed lease is the agent loop's to act on; anything else is retried
            # by the next change or re-sync.
            self.on_apply(f"could not set up port(s) {', '.join(sorted(joined))}: {exc.message}")
            return
        self.on_apply(
            f"port(s) {', '.join(sorted(joined))} plugged: {len(done.operations)} operation(s)"
        )

    def _waiting(self, holder: Holder | None, waited: float) -> None:
        if waited < 2:  # said once per wait
            who = holder.describe() if holder is not None else "another process"
            self.on_apply(f"waiting for another apply on this host: {who}")

    def _database_lost(self, exc: NetconError) -> None:
        self.state.failures += 1
        if self.watch is not None:
            # The connection is gone either way.
            with contextlib.suppress(Exception):
                self.watch.close()
            self.watch = None
        # Pooled connections are tried only after sitting idle: after a loss, make new ones.
        with contextlib.suppress(Exception):
            self.service.db.dispose()
        self.on_apply(f"database unreachable ({exc.message}); retrying")
        if self._lapsed() and not self.state.fenced:
            self._fence()

    def _fence(self) -> None:
        """Stop serving: peers consider this host dead once its heartbeat is older than
        host_down_time, and one of them may already serve its networks."""
        from core.linux.desired import fenced

        self.on_apply(
            "heartbeat lease expired: stopping gateway addresses, DHCP, NAT and VPN servers"
        )
        self.layer.lease = None
        try:
            if self.sync.desired is not None:
                self.layer.sync(fenced(self.sync.desired))
            # A VPN server bridges its clients into the network: the host that takes
            # the network over starts its own, and two would hand out the same pool.
            self.layer.apply(self.layer.vpn_stops())
            self.state.fenced = True
        except NetconError as exc:
            self.on_apply(f"could not stop serving: {exc.message}")

    def _evacuate_down_hosts(self) -> None:
        if not self.service.settings.auto_evacuate:
            return
        for dead in self.service.down_hosts():
            if dead == self.host:
                continue
            try:
                moved = self.service.evacuate_host(dead)
            except NetconError as exc:
                self.on_apply(f"could not evacuate {dead}: {exc.message}")
                continue
            self.on_apply(f"evacuated {dead}: {len(moved.networks)} network(s)")
