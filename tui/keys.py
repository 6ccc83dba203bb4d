"""Every key of the main screen has a binding id; `[keys]` in netcon.toml rebinds it.

The general keys are listed here; each view's own keys come from its actions
(``floating.release``…). :func:`bindings_for` builds the bindings of one view with the
admin's keys in place of the defaults.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass

from textual.binding import Binding


@dataclass(frozen=True)
class KeySpec:
    id: str
    key: str
    action: str
    label: str
    # Place in the footer (smaller first); None keeps it to `?` and the palette.
    footer: int | None = None
    # Handled as the key arrives (before a fast-typed `:fip` reaches the table).
    priority: bool = False


# Destructive keys are shifted or off the navigation keys; `q` quits as in htop and k9s.
GENERAL: tuple[KeySpec, ...] = (
    KeySpec("console.command", "colon", "command_line", "View", footer=90, priority=True),
    KeySpec("console.filter", "slash", "filter", "Filter", footer=91, priority=True),
    KeySpec("console.open", "enter", "open", "Open"),
    KeySpec("console.back", "escape", "back", "Back"),
    KeySpec("console.previous", "minus", "previous", "Previous view"),
    KeySpec("console.mark", "space", "mark", "Mark row"),
    KeySpec("console.mark_range", "shift+space,ctrl+space,ctrl+@", "mark_range",
            "Mark from the last mark to here"),
    KeySpec("console.describe", "d", "describe", "Describe in full"),
    KeySpec("console.copy", "y", "copy", "Copy the row's name or address"),
    KeySpec("console.wide", "w", "wide", "All columns / columns that fit"),
    KeySpec("console.columns", "C", "columns", "Choose this view's columns"),
    KeySpec("console.sort", "s", "sort", "Sort"),
    KeySpec("console.sort_reverse", "S", "sort_reverse", "Reverse sort"),
    KeySpec("console.refresh", "ctrl+r", "refresh_now", "Refresh now"),
    KeySpec("console.pause", "p", "toggle_pause", "Pause refresh"),
    KeySpec("console.detail_down", "J", "scroll_detail(3)", "Scroll detail down"),
    KeySpec("console.detail_up", "K", "scroll_detail(-3)", "Scroll detail up"),
    KeySpec("console.help", "question_mark", "help", "Help", footer=92),
    KeySpec("console.quit", "q", "app.quit", "Quit", footer=93),
)

# The table's own keys, for `?` (VirtualTable binds them).
TABLE_KEYS: tuple[tuple[str, str], ...] = (
    ("↑↓ j k", "move"),
    ("PgUp PgDn", "page"),
    ("g G Home End", "first / last row"),
)


def keys_of(spec_id: str, default: str, keymap: Mapping[str, str]) -> str:
    return keymap.get(spec_id, default)


def build_bindings(
    specs: Iterable[KeySpec], keymap: Mapping[str, str]
) -> tuple[list[Binding], list[str]]:
    """Bindings with the admin's keys; and a line for each key bound twice (first wins)."""
    bindings: list[Binding] = []
    taken: dict[str, str] = {}
    clashes: list[str] = []
    for spec in specs:
        keys = []
        for key in keys_of(spec.id, spec.key, keymap).split(","):
            key = key.strip()
            if key in taken:
                clashes.append(f"{key} is bound to {taken[key]} and {spec.id}; {taken[key]} wins")
                continue
            taken[key] = spec.id
            keys.append(key)
        if keys:
            bindings.append(
                Binding(
                    ",".join(keys), spec.action, spec.label, show=False, priority=spec.priority,
                    id=spec.id,
                )
            )
    return bindings, clashes


def unknown_ids(keymap: Mapping[str, str], known: Sequence[str]) -> list[str]:
    return sorted(set(keymap) - set(known))
