"""The service's transaction context, shared by every part of it: database, settings,
the audit record and change set of each write, and who hears of a committed change."""

from __future__ import annotations

import getpass
import json
import random
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Connection, Row, func, insert, select

from core import validate
from core.config import Settings, load_settings
from core.defaults import LOCK_TIMEOUT
from core.errors import NotFound
from core.paths import default_database_url
from core.store.db import Database
from core.store.schema import (
    audit_events,
    fixed_ips,
    floating_ips,
    host_changes,
    hosts,
    instances,
    networks,
    projects,
    utcnow,
)

# Actions whose changes reach the hosts' security-group filters.
_FILTER_ACTIONS = ("instance.", "secgroup.", "project.", "host.")

# The PostgreSQL channel on which every committed change names the hosts it concerns.
CHANGES_CHANNEL = "netcon_changes"


@dataclass(frozen=True)
class ChangeSet:
    """What a committed change touched, for whoever keeps the hosts in step.

    ``change`` is the change's number (its audit event's id; the latest when merged),
    ``hosts`` the network hosts that must apply it. An apply scoped to it
    (core.linux.scope.Scope.of) plans only these networks and floating IPs; ``floating``
    without ``floating_addresses`` means floating IPs changed without saying which, and
    the host then compares all of them. Small and plain, so that it travels as a
    notification payload (to_json / from_json)."""

    network_ids: frozenset[int] = field(default_factory=frozenset)
    floating: bool = False
    # The floating IPs whose address or NAT may have changed, when known.
    floating_addresses: frozenset[str] = field(default_factory=frozenset)
    hosts: frozenset[str] = field(default_factory=frozenset)
    change: int | None = None
    # Instance ports or security groups changed: the hosts' filters must be compared.
    security: bool = False
    # What of the filter changed, when the change says (a host then looks up only the
    # elements these name): the groups whose rules changed, and the instance ports, as
    # (MAC, fixed address), that appeared, went or changed groups. Empty with
    # ``security``: compare every element.
    security_groups: frozenset[int] = field(default_factory=frozenset)
    security_ports: frozenset[tuple[str, str]] = field(default_factory=frozenset)

    # Project VPNs whose servers alone changed (by project name).
    vpns: frozenset[str] = field(default_factory=frozenset)

    @property
    def security_keyed(self) -> bool:
        return bool(self.security_groups or self.security_ports)

    def __or__(self, other: ChangeSet) -> ChangeSet:
        numbers = [n for n in (self.change, other.change) if n is not None]
        # Merged, "some floating IP, unknown which" wins over a list of addresses.
        unknown = (self.floating and not self.floating_addresses) or (
            other.floating and not other.floating_addresses
        )
        return ChangeSet(
            self.network_ids | other.network_ids,
            self.floating or other.floating,
            frozenset() if unknown else self.floating_addresses | other.floating_addresses,
            self.hosts | other.hosts,
            max(numbers) if numbers else None,
            self.security or other.security,
            # Merged, "the filter changed, unknown where" (or a network changed, whose
            # filter elements no key names) wins over a list of keys.
            *(
                (
                    self.security_groups | other.security_groups,
                    self.security_ports | other.security_ports,
                )
                if all(c.security_keyed or not (c.security or c.network_ids) for c in (self, other))
                else (frozenset(), frozenset())
            ),
            self.vpns | other.vpns,
        )

    def __bool__(self) -> bool:
        return bool(self.network_ids or self.floating or self.hosts or self.vpns)

    def to_json(self) -> dict[str, Any]:
        data: dict[str, Any] = {
            "change": self.change,
            "hosts": sorted(self.hosts),
            "networks": sorted(self.network_ids),
            "floating": self.floating,
            "addresses": sorted(self.floating_addresses),
            "security": self.security,
        }
        # Left out when empty: the payload stays small for the changes that have none.
        if self.security_groups:
            data["security_groups"] = sorted(self.security_groups)
        if self.security_ports:
            data["security_ports"] = sorted([mac, addr] for mac, addr in self.security_ports)
        if self.vpns:
            data["vpns"] = sorted(self.vpns)
        return data

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> ChangeSet:
        change = data.get("change")
        return cls(
            frozenset(int(n) for n in data.get("networks", ())),
            bool(data.get("floating", False)),
            frozenset(str(a) for a in data.get("addresses", ())),
            frozenset(str(h) for h in data.get("hosts", ())),
            int(change) if change is not None else None,
            bool(data.get("security", False)),
            frozenset(int(g) for g in data.get("security_groups", ())),
            frozenset((str(m), str(a)) for m, a in data.get("security_ports", ())),
            frozenset(str(p) for p in data.get("vpns", ())),
        )


Listener = Callable[[ChangeSet], None]


class ServiceContext:
    """One per service: each part (networks, instances, ...) holds it and writes
    through :meth:`change`, so that every change is one transaction with its audit
    record, told once committed to the listeners, the broker and the hosts' tables."""

    def __init__(
        self,
        db_url: str | None = None,
        settings: Settings | None = None,
        actor: str | None = None,
        *,
        clock: Callable[[], datetime] = utcnow,
        rng: random.Random | None = None,
        create: bool = True,
        lock_timeout: float = LOCK_TIMEOUT,
        application: str = "netcon",
    ) -> None:
        """``create``: make the database if it is missing or empty (the command line
        allows that only to `init`, `demo` and the default path); ``lock_timeout``: how
        long a write waits for another writer; ``application``: how this process is named
        to PostgreSQL, so a waiting writer can name the one it waits for."""
        self.settings = settings if settings is not None else load_settings()
        self.db = Database(
            default_database_url() if db_url is None else db_url,
            create=create,
            lock_timeout=lock_timeout,
            application=application,
        )
        self.actor = actor or _current_user()
        self.clock = clock
        self.rng = rng or random.SystemRandom()
        self.listeners: list[Listener] = []
        # While a batch runs, changes are gathered here and told once at its end.
        self._held: ChangeSet | None = None
        # The last change this service committed (the console follows it to "applied").
        self.last_change: ChangeSet | None = None
        # Wake-ups on the broker, when one is set (core.bus.Publisher), made at first use.
        self._publisher: Any = None
        # Per thread: the changes committed inside tracking_changes() blocks.
        self._tracking = threading.local()

    @contextmanager
    def change(self, action: str, target: str) -> Iterator[tuple[Connection, _Audit]]:
        """One write transaction that records its own AuditEvent, then tells listeners."""
        audit = _Audit()
        try:
            with self.db.write() as connection:
                yield connection, audit
                if audit.skip:
                    raise _NothingToDo
                inserted = connection.execute(
                    insert(audit_events).values(
                        at=self.clock(),
                        actor=self.actor,
                        action=action,
                        target=(audit.target or target)[:255],
                        before=_dump(audit.before),
                        after=_dump(audit.after),
                    )
                )
                (change,) = inserted.inserted_primary_key  # type: ignore[misc]
                changes = ChangeSet(
                    frozenset(audit.network_ids),
                    audit.floating or bool(audit.floating_addresses),
                    frozenset(audit.floating_addresses),
                    frozenset(self.hosts_concerned(connection, audit)),
                    int(change),
                    # Every change to an instance, a project or a group may move a port
                    # in or out of a group, or change what a group lets in.
                    action.startswith(_FILTER_ACTIONS),
                    frozenset(audit.filter_groups),
                    frozenset(audit.filter_ports),
                    frozenset(audit.vpns),
                )
                self.record_for_hosts(connection, changes)
        except _NothingToDo:
            return
        self.last_change = changes
        for made in getattr(self._tracking, "lists", ()):
            made.append(changes)
        self.wake(changes)
        self.tell(changes)

    @contextmanager
    def tracking_changes(self) -> Iterator[list[ChangeSet]]:
        """The changes this thread commits inside the block, in order (several callers
        may share one service, each in its own thread)."""
        made: list[ChangeSet] = []
        lists = getattr(self._tracking, "lists", None)
        if lists is None:
            lists = self._tracking.lists = []
        lists.append(made)
        try:
            yield made
        finally:
            lists.remove(made)

    def wake(self, changes: ChangeSet) -> None:
        """With a broker set, wake the agents of the hosts a committed change names, on
        their own subjects. Told after the commit, so an agent that wakes finds the
        change; a wake-up that does not arrive is caught from the change table."""
        if not changes.hosts or self.settings.bus is None:
            return
        if self._publisher is None:
            from core.bus import Publisher

            self._publisher = Publisher(self.settings.bus)
        self._publisher.publish(changes.hosts, {"change": changes.change})

    def tell(self, changes: ChangeSet) -> None:
        if not changes:
            return
        if self._held is not None:
            self._held = self._held | changes
            return
        for listener in self.listeners:
            listener(changes)

    @contextmanager
    def deferred_changes(self) -> Iterator[None]:
        """Hold change notices until the block ends, then tell them once, merged: a batch
        of 1,000 associations brings the host in line once, not 1,000 times."""
        if self._held is not None:
            yield
            return
        self._held = ChangeSet()
        try:
            yield
        finally:
            held, self._held = self._held, None
            self.tell(held)

    def hosts_concerned(self, connection: Connection, audit: _Audit) -> set[str]:
        """The network hosts a change must reach: those its body named (a deleted
        network's host, a terminated instance's), the hosts of the networks it touched
        and of their instances, and the hosts of the floating IPs it touched."""
        found = set(audit.hosts)
        if audit.network_ids or audit.vpn_networks:
            ids = sorted(audit.network_ids | audit.vpn_networks)
            found.update(
                connection.execute(
                    select(networks.c.host).where(
                        networks.c.id.in_(ids), networks.c.host.is_not(None)
                    )
                ).scalars()
            )
        if audit.network_ids:
            ids = sorted(audit.network_ids)
            found.update(
                connection.execute(
                    select(instances.c.host)
                    .join(fixed_ips, fixed_ips.c.instance_id == instances.c.id)
                    .where(fixed_ips.c.network_id.in_(ids), instances.c.host.is_not(None))
                    .distinct()
                ).scalars()
            )
        if audit.floating_addresses:
            found.update(
                connection.execute(
                    select(floating_ips.c.host)
                    .where(floating_ips.c.address.in_(sorted(audit.floating_addresses)))
                    .distinct()
                ).scalars()
            )
        return found

    def record_for_hosts(self, connection: Connection, changes: ChangeSet) -> None:
        """One row per host the change concerns, in the change's own transaction, and on
        PostgreSQL without a broker a NOTIFY naming those hosts, which is delivered only
        on commit (with a broker, :meth:`wake` tells them after the commit instead: a
        NOTIFY would still cost every listening backend)."""
        if not changes.hosts:
            return
        networks_json = json.dumps(sorted(changes.network_ids))
        floating_json = json.dumps(sorted(changes.floating_addresses))
        groups_json = json.dumps(sorted(changes.security_groups))
        ports_json = json.dumps(sorted([mac, addr] for mac, addr in changes.security_ports))
        vpns_json = json.dumps(sorted(changes.vpns))
        connection.execute(
            insert(host_changes),
            [
                {
                    "change_id": changes.change,
                    "host": host,
                    "networks": networks_json,
                    "floating": floating_json,
                    "security": changes.security,
                    "groups": groups_json,
                    "ports": ports_json,
                    "vpns": vpns_json,
                }
                for host in sorted(changes.hosts)
            ],
        )
        if self.db.dialect == "postgresql" and self.settings.bus is None:
            payload = json.dumps({"change": changes.change, "hosts": sorted(changes.hosts)})
            connection.execute(select(func.pg_notify(CHANGES_CHANNEL, payload[:7900])))

    # -- look-ups that raise NotFound with the field's name ---------------------------

    def project(self, connection: Connection, name: str, *, lock: bool = False) -> Row[Any]:
        validate.name("project", name)
        query = select(projects).where(projects.c.name == name)
        if lock:
            query = query.with_for_update()
        project = connection.execute(query).first()
        if project is None:
            raise NotFound("project", f"no project named {name!r}")
        return project

    def instance(self, connection: Connection, name: str) -> Row[Any]:
        validate.hostname("instance", name)
        instance = connection.execute(select(instances).where(instances.c.name == name)).first()
        if instance is None:
            raise NotFound("instance", f"no instance named {name!r}")
        return instance

    def network(self, connection: Connection, ref: str | int) -> Row[Any]:
        if isinstance(ref, int) or (isinstance(ref, str) and ref.isdigit()):
            number = validate.row_id("network", ref)
            query = select(networks).where(networks.c.id == number)
        else:
            cidr = validate.ipv4_network("network", ref)
            query = select(networks).where(networks.c.cidr == str(cidr))
        network = connection.execute(query).first()
        if network is None:
            raise NotFound("network", f"no network {ref}")
        return network

    def fixed_ip(self, connection: Connection, address: str) -> Row[Any]:
        text = str(validate.ipv4_address("address", address))
        fixed = connection.execute(select(fixed_ips).where(fixed_ips.c.address == text)).first()
        if fixed is None:
            raise NotFound("address", f"{text} is not a fixed IP of any network")
        return fixed

    def pick_host(self, connection: Connection) -> str:
        """The least-loaded live network host; this host when none has a heartbeat."""
        cutoff = self.clock() - timedelta(seconds=self.settings.host_down_time)
        load = (
            select(networks.c.host, func.count(networks.c.id).label("n"))
            .where(networks.c.host.is_not(None))
            .group_by(networks.c.host)
            .subquery()
        )
        row = connection.execute(
            select(hosts.c.name)
            .outerjoin(load, load.c.host == hosts.c.name)
            .where(hosts.c.last_heartbeat >= cutoff)
            .order_by(func.coalesce(load.c.n, 0), hosts.c.name)
            .limit(1)
        ).first()
        if row is not None:
            return str(row[0])
        self.ensure_host(connection, self.settings.host)
        return self.settings.host

    def ensure_host(self, connection: Connection, name: str) -> None:
        """Register a network host by name unless it is known already (this host with
        the address its VPN clients reach it at)."""
        values: dict[str, str | None] = {"name": name, "role": "network"}
        if name == self.settings.host:
            values["vpn_ip"] = self.settings.vpn_ip
        # Two transactions may both find no row: on PostgreSQL a plain INSERT of the
        # second fails on the unique name, so a conflict is skipped instead. (Each
        # dialect's insert is imported here: PostgreSQL's costs 50 ms at start-up.)
        if self.db.dialect == "postgresql":
            from sqlalchemy.dialects.postgresql import insert as pg_insert

            connection.execute(
                pg_insert(hosts).values(**values).on_conflict_do_nothing(index_elements=["name"])
            )
        else:
            from sqlalchemy.dialects.sqlite import insert as sqlite_insert

            connection.execute(
                sqlite_insert(hosts)
                .values(**values)
                .on_conflict_do_nothing(index_elements=["name"])
            )


@dataclass
class _Audit:
    target: str | None = None
    before: Any = None
    after: Any = None
    network_ids: set[int] = field(default_factory=set)
    floating: bool = False
    floating_addresses: set[str] = field(default_factory=set)
    # Hosts the change concerns that the database no longer names once it is made (the
    # host of a deleted network, of a terminated instance).
    hosts: set[str] = field(default_factory=set)
    # Project VPNs whose servers alone changed, and their networks: such a change
    # concerns the hosts that serve those networks, not the compute hosts of their
    # instances (a project VPN runs on its network's host alone).
    vpns: set[str] = field(default_factory=set)
    vpn_networks: set[int] = field(default_factory=set)
    # What of the hosts' filters the change touched, when it says (ChangeSet).
    filter_groups: set[int] = field(default_factory=set)
    filter_ports: set[tuple[str, str]] = field(default_factory=set)
    # Set when the body finds there is nothing to change after all: roll back, no audit.
    skip: bool = False


class _NothingToDo(Exception):
    pass


def _dump(value: Any) -> str | None:
    if value is None:
        return None
    return json.dumps(value, sort_keys=True, default=str)


def _current_user() -> str:
    try:
        return getpass.getuser()
    except (KeyError, OSError):
        return "unknown"
