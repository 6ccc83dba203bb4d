"""The main screen's keys as the admin has bound them: the bindings of the view on
screen (its actions, and shift+letter sorts by its columns), the footer, `?` and the
ctrl+p palette, and what is wrong in `[keys]`.
"""

from __future__ import annotations

from collections.abc import Mapping
from functools import partial
from typing import TYPE_CHECKING, Any

from textual.binding import Binding

from tui.keys import (
    GENERAL,
    TABLE_KEYS,
    KeySpec,
    build_bindings,
    overrides,
    screen_bindings,
    unknown_ids,
    view_keymap,
)
from tui.palette import PaletteEntry
from tui.screens.columns import TABLE_BOUND, sort_id, sort_keys
from tui.views import VIEWS
from tui.views.base import BaseAction, RowAction, ViewAction, ViewSpec
from tui.widgets.keybar import KeyBar

if TYPE_CHECKING:
    from tui.screens.frame import MainFrame
    from tui.screens.help import HelpEntry


def action_keys(spec: ViewSpec[Any]) -> list[KeySpec]:
    return [KeySpec(a.id, a.key, f"run('{a.id}')", a.label, a.footer) for a in spec.actions]


def column_sorts(spec: ViewSpec[Any]) -> list[KeySpec]:
    """A sort for every column, keyed as the view's keymap gives it (:func:`sort_keys`)."""
    return [
        KeySpec(sort_id(c.key), "", f"sort_by('{c.key}')", f"Sort by {c.label}")
        for c in spec.columns
    ]


ACTION_KEYS = [key for view in VIEWS.values() for key in action_keys(view)]
# Columns of the same key in several views share one binding: it sorts the view on screen.
SORT_KEYS = list({key.id: key for view in VIEWS.values() for key in column_sorts(view)}
                 .values())
# What the main screen declares: the general keys, every view's actions and sorts.
BINDINGS = screen_bindings(GENERAL, ACTION_KEYS + SORT_KEYS)
DECLARED = {binding.id: binding.key for binding in BINDINGS if binding.id}


class ScreenKeys:
    def __init__(self, screen: MainFrame) -> None:
        self.screen = screen
        self.problems: list[str] = []
        self.sorts: list[KeySpec] = []  # this view's shift+letter sorts

    @property
    def keymap(self) -> Mapping[str, str]:
        return self.screen.context.settings.keys

    def check_keymap(self) -> None:
        """Say once, at start, what in `[keys]` names no binding or binds a key twice."""
        ids = [spec.id for spec in GENERAL] + [key.id for key in ACTION_KEYS + SORT_KEYS]
        problems = [f"keys.{i} is not a binding id (`?` lists them)" for i in
                    unknown_ids(self.keymap, ids)]
        for view in VIEWS.values():
            problems += self.view_keys(view)[1]
        self.problems = sorted(set(problems))
        if self.problems:
            self.screen.notify("\n".join(self.problems), title="netcon.toml [keys]",
                               severity="warning", timeout=10)

    def view_keys(self, spec: ViewSpec[Any]) -> tuple[list[Binding], list[str]]:
        return build_bindings([*GENERAL, *action_keys(spec)], self.keymap)

    def bind(self) -> None:
        """The keys of the view now on screen, through Textual's keymap."""
        screen = self.screen
        spec = screen.state.spec
        bindings, _clashes = self.view_keys(spec)
        taken = {key for binding in bindings for key in binding.key.split(",")}
        # Each column the first letter of its label no other key holds, as a capital.
        self.sorts = sort_keys(spec, taken)
        live = [*GENERAL, *action_keys(spec), *self.sorts]
        others = [key.id for key in ACTION_KEYS + SORT_KEYS]
        keymap = view_keymap(live, others, self.keymap)
        screen.app.set_keymap(overrides(keymap, DECLARED))
        # A letter this view binds (`g` on instances) is the view's, not the table's:
        # the table cedes it rather than the view's binding jumping the typed queue.
        screen.table.ceded = TABLE_BOUND & {
            key.strip() for spec_id in keymap for key in keymap[spec_id].split(",")
        }
        self.show()

    def prompt_keys(self) -> frozenset[str]:
        """The keys that open the `:` and `/` prompts, as bound."""
        return frozenset(
            key.strip()
            for spec in GENERAL
            if spec.action in ("command_line", "filter")
            for key in self.keymap.get(spec.id, spec.key).split(",")
        )

    def enabled(self, action: BaseAction) -> bool:
        return not (action.mutating and self.screen.context.read_only)

    def action(self, action_id: str) -> RowAction[Any] | ViewAction | None:
        for action in self.screen.state.spec.actions:
            if action.id == action_id:
                return action if self.enabled(action) else None
        return None

    def display(self, spec_id: str, default: str) -> str:
        """The first key bound to ``spec_id``, as the footer and `?` show it."""
        keys = self.keymap.get(spec_id, default).split(",")[0].strip()
        return self.screen.app.get_key_display(Binding(keys, ""))

    def show(self) -> None:
        """The footer: this view's actions in their order, then `:` `/` `?` `q`."""
        screen = self.screen
        entries: list[tuple[int, str, str]] = []
        empty = screen.table.current_row is None
        for action in screen.state.spec.actions:
            if empty and isinstance(action, RowAction):
                continue  # nothing to act on yet
            if action.footer is not None and self.enabled(action):
                entries.append((action.footer, self.display(action.id, action.key),
                                action.label))
        for spec in GENERAL:
            if spec.footer is not None:
                entries.append((spec.footer, self.display(spec.id, spec.key), spec.label))
        entries.sort(key=lambda e: e[0])
        screen.query_one(KeyBar).show_keys([(key, label) for _, key, label in entries])

    # -- help and palette -------------------------------------------------------------

    def help_sections(self) -> list[tuple[str, list[HelpEntry]]]:
        """The keys that work here, as bound, with their binding ids."""
        from tui.screens.help import HelpEntry

        spec = self.screen.state.spec
        view = [
            HelpEntry(self.display(a.id, a.key), a.label + (" (marks)" if isinstance(
                a, RowAction) and a.bulk else ""), a.id)
            for a in spec.actions
            if self.enabled(a)
        ]
        general = [HelpEntry(self.display(s.id, s.key), s.label, s.id) for s in GENERAL]
        general += [
            HelpEntry("ctrl+p", "Palette: every view and action"),
            HelpEntry("ctrl+q", "Quit"),
        ]
        table = [HelpEntry(k, d) for k, d in TABLE_KEYS]
        table.append(HelpEntry("~ in a row", "its change waits for the host's apply"))
        sections = [(spec.title, view)] if view else []
        sections += [("General", general), ("Table", table)]
        sorts = [HelpEntry(self.display(s.id, s.key), s.label, s.id) for s in self.sorts]
        if sorts:
            sections.append(("Sort (again: the other way)", sorts))
        return sections

    def palette_entries(self) -> list[PaletteEntry]:
        screen = self.screen
        entries = [
            PaletteEntry(
                f"View: {spec.title}", partial(screen.switch_to, spec),
                f":{spec.aliases[0]}  ({', '.join(spec.aliases[1:3])})",
            )
            for spec in VIEWS.values()
            if spec.listed
        ]
        title = screen.state.spec.title
        for action in screen.state.spec.actions:
            if self.enabled(action):
                entries.append(
                    PaletteEntry(
                        f"{title}: {action.label}",
                        partial(screen.action_run, action.id),
                        f"key {self.display(action.id, action.key)}  ({action.id})",
                    )
                )
        return entries
