"""State shared by every part of the service: database, settings, audit, notifications."""

from __future__ import annotations

import getpass
import json
import random
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.orm import Session

from core import validate
from core.config import Settings, default_database_url, load_settings
from core.errors import NotFound
from core.store.db import Database
from core.store.models import AuditEvent, FixedIP, Host, Instance, Network, Project, utcnow


@dataclass(frozen=True)
class ChangeSet:
    """What a committed change touched, for whoever keeps the host in step."""

    network_ids: frozenset[int] = field(default_factory=frozenset)
    floating: bool = False


Listener = Callable[[ChangeSet], None]


class ServiceBase:
    def __init__(
        self,
        db_url: str | None = None,
        settings: Settings | None = None,
        actor: str | None = None,
        *,
        clock: Callable[[], datetime] = utcnow,
        rng: random.Random | None = None,
    ) -> None:
        self.settings = settings if settings is not None else load_settings()
        self.db = Database(db_url or default_database_url())
        self.actor = actor or _current_user()
        self.clock = clock
        self.rng = rng or random.SystemRandom()
        self.listeners: list[Listener] = []
        if self.settings.auto_apply:
            from core.linux.autoapply import install

            install(self)  # type: ignore[arg-type]

    @contextmanager
    def _change(self, action: str, target: str) -> Iterator[tuple[Session, _Audit]]:
        """One write transaction that records its own AuditEvent, then tells listeners."""
        audit = _Audit()
        try:
            with self.db.write() as session:
                yield session, audit
                if audit.skip:
                    raise _NothingToDo
                session.add(
                    AuditEvent(
                        at=self.clock(),
                        actor=self.actor,
                        action=action,
                        target=audit.target or target,
                        before=_dump(audit.before),
                        after=_dump(audit.after),
                    )
                )
        except _NothingToDo:
            return
        changes = ChangeSet(frozenset(audit.network_ids), audit.floating)
        if changes.network_ids or changes.floating:
            for listener in self.listeners:
                listener(changes)

    # -- look-ups that raise NotFound with the field's name ---------------------------

    def _project(self, session: Session, name: str, *, lock: bool = False) -> Project:
        validate.name("project", name)
        query = select(Project).where(Project.name == name)
        if lock:
            query = query.with_for_update()
        project = session.scalars(query).first()
        if project is None:
            raise NotFound("project", f"no project named {name!r}")
        return project

    def _instance(self, session: Session, name: str) -> Instance:
        validate.hostname("instance", name)
        instance = session.scalars(select(Instance).where(Instance.name == name)).first()
        if instance is None:
            raise NotFound("instance", f"no instance named {name!r}")
        return instance

    def _network(self, session: Session, ref: str | int) -> Network:
        if isinstance(ref, int) or (isinstance(ref, str) and ref.isdigit()):
            network = session.get(Network, int(ref))
        else:
            cidr = validate.ipv4_network("network", ref)
            network = session.scalars(select(Network).where(Network.cidr == str(cidr))).first()
        if network is None:
            raise NotFound("network", f"no network {ref}")
        return network

    def _fixed_ip(self, session: Session, address: str) -> FixedIP:
        text = str(validate.ipv4_address("address", address))
        fixed = session.scalars(select(FixedIP).where(FixedIP.address == text)).first()
        if fixed is None:
            raise NotFound("address", f"{text} is not a fixed IP of any network")
        return fixed

    def _pick_host(self, session: Session) -> str:
        """The least-loaded live network host; this host when none has a heartbeat."""
        cutoff = self.clock() - timedelta(seconds=self.settings.host_down_time)
        load = (
            select(Network.host, func.count(Network.id).label("n"))
            .where(Network.host.is_not(None))
            .group_by(Network.host)
            .subquery()
        )
        row = session.execute(
            select(Host.name)
            .outerjoin(load, load.c.host == Host.name)
            .where(Host.last_heartbeat >= cutoff)
            .order_by(func.coalesce(load.c.n, 0), Host.name)
            .limit(1)
        ).first()
        if row is not None:
            return str(row[0])
        self._ensure_host(session, self.settings.host)
        return self.settings.host

    def _ensure_host(self, session: Session, name: str) -> None:
        """Register a network host by name unless it is known already."""
        # Two transactions may both find no row: on PostgreSQL a plain INSERT of the
        # second fails on the unique name, so a conflict is skipped instead.
        dialect_insert = pg_insert if self.db.dialect == "postgresql" else sqlite_insert
        session.execute(
            dialect_insert(Host)
            .values(name=name, role="network")
            .on_conflict_do_nothing(index_elements=["name"])
        )


@dataclass
class _Audit:
    target: str | None = None
    before: Any = None
    after: Any = None
    network_ids: set[int] = field(default_factory=set)
    floating: bool = False
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
