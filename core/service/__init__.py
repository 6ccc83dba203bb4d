"""The one service API that the console, the CLI and scripts call (see facade.py)."""

from core.service.base import ChangeSet, Listener
from core.service.facade import NetconService

__all__ = ["ChangeSet", "Listener", "NetconService"]
