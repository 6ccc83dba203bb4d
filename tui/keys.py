"""Every key of the main screen has a binding id; `[keys]` in netcon.toml rebinds it.

The general keys are listed here; each view's own keys come from its actions
(``floating.release``…). The main screen declares a binding for every one of them once
(:func:`screen_bindings`); which keys are live is Textual's keymap
(``App.set_keymap``), set per view by :func:`view_keymap`: this view's actions get the
admin's keys, the other views' actions a key no terminal sends.
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


# A key name no terminal sends, for the actions of the views not on screen. One name for
# all of them: Textual rewrites a node's bindings per keymap entry on every key it
# checks, walking every key the node binds, so each name more costs every key typed.
UNBOUND = "unbound"


def unbound(spec_id: str) -> str:
    """The key of ``spec_id`` while its view is not on screen."""
    return UNBOUND


def screen_bindings(general: Iterable[KeySpec], actions: Iterable[KeySpec]) -> list[Binding]:
    """Every binding the main screen may need: the general keys with their default keys,
    every view's actions with none (:func:`view_keymap` gives them theirs)."""
    bindings = [
        Binding(spec.key, spec.action, spec.label, show=False, priority=spec.priority,
                id=spec.id)
        for spec in general
    ]
    bindings += [
        Binding(unbound(spec.id), spec.action, spec.label, show=False, id=spec.id)
        for spec in actions
    ]
    return bindings


def view_keymap(
    live: Sequence[KeySpec], others: Iterable[str], keymap: Mapping[str, str]
) -> dict[str, str]:
    """The keymap while ``live`` (the general keys and one view's actions) are bound:
    the admin's keys, a key bound twice going to the first; every id in ``others``
    unbound. Every id is in it, so Textual's keymap leaves nothing of the defaults."""
    bindings, _clashes = build_bindings(live, keymap)
    keys = {binding.id: binding.key for binding in bindings if binding.id}
    result = {spec.id: keys.get(spec.id, unbound(spec.id)) for spec in live}
    result.update({spec_id: unbound(spec_id) for spec_id in others if spec_id not in result})
    return result


def overrides(keymap: Mapping[str, str], declared: Mapping[str, str]) -> dict[str, str]:
    """The entries of ``keymap`` that bind an id to other keys than ``declared`` (the
    keys its Binding was declared with). Textual rewrites the bindings of every node
    between the focus and the app with each keymap entry on every key it checks, at a
    cost that grows with the square of the entries: the entries that change nothing
    are left out, so that a key costs the same with every view's actions declared."""
    return {i: keys for i, keys in keymap.items() if declared.get(i) != keys}


def unknown_ids(keymap: Mapping[str, str], known: Sequence[str]) -> list[str]:
    return sorted(set(keymap) - set(known))
