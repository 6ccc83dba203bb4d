"""What the main screen is given by the app: the service, the mode, the settings."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING

from tui.settings import ConsoleMemory, ConsoleSettings, ContextStyle

if TYPE_CHECKING:
    from core.service.api import NetconAPI
    from tui.pending import PendingSource


@dataclass
class ConsoleContext:
    api: NetconAPI
    read_only: bool
    clock: Callable[[], datetime]
    settings: ConsoleSettings = field(default_factory=ConsoleSettings)
    memory: ConsoleMemory | None = None
    # Where pending host changes are read from; None when not read (tests, pictures).
    pending_source: PendingSource | None = None
    refresh_interval: float = 5.0
    style: ContextStyle | None = None
