"""What the ctrl+p palette offers, as the screen under it describes it. Kept apart from
:mod:`tui.commands` so that Textual's palette loads only when it is first opened."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol, runtime_checkable


@dataclass(frozen=True)
class PaletteEntry:
    text: str
    run: Callable[[], object]
    help: str


@runtime_checkable
class PaletteSource(Protocol):
    def palette_entries(self) -> list[PaletteEntry]: ...
