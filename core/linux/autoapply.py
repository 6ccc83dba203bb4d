"""Apply a committed change to the host at once, when this process may change it.

Only what the change touched is planned and applied (its scope), under the host's apply
lock like any apply. Without CAP_NET_ADMIN (or when the apply fails) the change stays
pending: the next `netcon host plan` shows it and `netcon host apply` carries it out.
"""

from __future__ import annotations

import logging
import threading
from typing import Any

from core.errors import NetconError
from core.linux.applylock import Holder
from core.linux.host import LOCK_TIMEOUT, HostLayer, can_change_host
from core.linux.scope import Scope

log = logging.getLogger("netcon.host")


def install(service: Any) -> None:
    layer: HostLayer | None = None
    guard = threading.Lock()

    def waiting(holder: Holder | None, waited: float) -> None:
        if waited < 2:  # said once
            log.warning("%s; waiting", layer.lock.busy_message(holder) if layer else "")

    def apply_change(changes: Any) -> None:
        nonlocal layer
        if not can_change_host():
            return
        host = service.settings.host
        with guard:
            try:
                # Read before the plan: only a change the plan saw is recorded as applied.
                owed = service.pending_for(host).changes
                if layer is None:
                    layer = HostLayer(service.settings, service.db)
                # What it brings up lasts one heartbeat lease here, when fencing is on.
                layer.lease = service.serving_lease(layer)
                done = layer.sync(
                    scope=Scope.of(changes),
                    lock_timeout=getattr(service.db, "lock_timeout", LOCK_TIMEOUT),
                    on_wait=waiting,
                )
                # Applied, and owed nothing older: the host is up to date (an older change
                # that failed stays owed until `netcon host apply`).
                only = changes.change if owed == (changes.change,) else None
                service.record_applied_here(only, problems=done.problems)
            except NetconError as exc:
                log.warning("host not updated (pending until 'netcon host apply'): %s", exc)
                service.record_applied_here(None, failure=exc)

    service.listeners.append(apply_change)
