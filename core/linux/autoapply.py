"""Apply a committed change to the host at once, when this process may change it.

Without CAP_NET_ADMIN (or when the apply fails) the change stays pending: the next
`netcon host plan` shows it and `netcon host apply` carries it out.
"""

from __future__ import annotations

import logging
import threading
from typing import Any

from core.errors import NetconError
from core.linux.host import HostLayer, can_change_host

log = logging.getLogger("netcon.host")


def install(service: Any) -> None:
    layer: HostLayer | None = None
    lock = threading.Lock()

    def apply_change(changes: Any) -> None:
        nonlocal layer
        if not can_change_host():
            return
        with lock:
            try:
                if layer is None:
                    layer = HostLayer(service.settings, service.db)
                # The planner compares everything but changes only what differs, so a
                # full sync touches exactly the part this change affected.
                layer.sync()
            except NetconError as exc:
                log.warning("host not updated (pending until 'netcon host apply'): %s", exc)

    service.listeners.append(apply_change)
