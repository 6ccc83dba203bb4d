"""What every part of the service reaches through the one context it holds.

A part (networks, instances, security groups, ...) is a plain object over the shared
:class:`~core.service.base.ServiceContext`: it reads ``db``, ``settings`` and the clock
from it and writes through ``_change``, so every part's change is one transaction with
its audit record. A part that needs another is handed it; no part inherits another.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from contextlib import AbstractContextManager
from datetime import datetime
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from sqlalchemy import Connection, Row

    from core.config import Settings
    from core.service.base import ChangeSet, Listener, ServiceContext, _Audit
    from core.store.db import Database


class Part:
    def __init__(self, context: ServiceContext) -> None:
        self._context = context

    @property
    def db(self) -> Database:
        return self._context.db

    @property
    def settings(self) -> Settings:
        return self._context.settings

    @property
    def actor(self) -> str:
        return self._context.actor

    @property
    def clock(self) -> Callable[[], datetime]:
        return self._context.clock

    @property
    def rng(self) -> random.Random:
        return self._context.rng

    @property
    def listeners(self) -> list[Listener]:
        return self._context.listeners

    def _change(
        self, action: str, target: str
    ) -> AbstractContextManager[tuple[Connection, _Audit]]:
        return self._context.change(action, target)

    def deferred_changes(self) -> AbstractContextManager[None]:
        return self._context.deferred_changes()

    def tracking_changes(self) -> AbstractContextManager[list[ChangeSet]]:
        return self._context.tracking_changes()

    # -- look-ups that raise NotFound with the field's name ---------------------------

    def _project(self, connection: Connection, name: str, *, lock: bool = False) -> Row[Any]:
        return self._context.project(connection, name, lock=lock)

    def _instance(self, connection: Connection, name: str) -> Row[Any]:
        return self._context.instance(connection, name)

    def _network(self, connection: Connection, ref: str | int) -> Row[Any]:
        return self._context.network(connection, ref)

    def _fixed_ip(self, connection: Connection, address: str) -> Row[Any]:
        return self._context.fixed_ip(connection, address)

    def _pick_host(self, connection: Connection) -> str:
        return self._context.pick_host(connection)

    def _ensure_host(self, connection: Connection, name: str) -> None:
        self._context.ensure_host(connection, name)
