"""The vocabulary a view file declares itself in: columns, detail, drill-down and actions
as data. :class:`tui.screens.main.MainScreen` runs any view built from these.

An action is a binding id and a key, a label, what it asks (a picker, a form, a
confirmation), the service call, and what it says when the call succeeds. The call is
an ordinary typed function of the :class:`NetconAPI`, so a type checker follows it from
the key to the transaction.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Hashable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Generic, TypeVar

from textual.content import Content

from tui.widgets.virtual_table import Column

if TYPE_CHECKING:
    from textual.screen import Screen

    from core.config import Settings
    from core.service.api import NetconAPI
    from core.views import Page

__all__ = ["Column"]

Item = TypeVar("Item")
Scope = Mapping[str, str | int]


# -- what the admin typed ---------------------------------------------------------------


class Values:
    """A submitted form: each field's checked value, typed on the way out."""

    def __init__(self, values: Mapping[str, object] | None = None) -> None:
        self._values = dict(values or {})

    def __contains__(self, name: str) -> bool:
        return name in self._values

    def text(self, name: str) -> str:
        return str(self._values[name])

    def optional(self, name: str) -> str | None:
        value = self._values.get(name)
        return None if value is None else str(value)

    def integer(self, name: str) -> int:
        value = self._values[name]
        assert isinstance(value, int)
        return value

    def names(self, name: str) -> list[str]:
        value = self._values.get(name, [])
        assert isinstance(value, list)
        return [str(v) for v in value]

    def as_dict(self) -> dict[str, object]:
        return dict(self._values)


@dataclass(frozen=True)
class Field:
    """One input of a form.

    ``check`` turns the text into the value handed to the service, raising the core's
    ``InvalidInput`` when it is wrong. An empty optional field gives no value, so the
    service applies its own default, shown in grey as ``default: …`` (``placeholder``);
    ``example`` is grey text that is never used (``e.g. …``). With ``choices`` the
    field is a picker instead of free text. ``names`` are other names the core gives
    the field in a refusal (the form's ``name`` is the core's ``project``).
    """

    name: str
    label: str
    check: Callable[[str], object] = str
    value: str = ""
    placeholder: str = ""
    optional: bool = False
    choices: tuple[str, ...] = ()
    example: str = ""
    names: tuple[str, ...] = ()

    @property
    def grey(self) -> str:
        """The grey text of an empty field: its default, then an example."""
        parts = [f"default: {self.placeholder}"] if self.placeholder else []
        parts += [f"e.g. {self.example}"] if self.example else []
        return " · ".join(parts)

    def named(self, name: str | None) -> bool:
        return name is not None and (name == self.name or name in self.names)


@dataclass(frozen=True)
class Form:
    title: str
    fields: tuple[Field, ...]
    submit: str = "OK"
    note: str = ""
    # The field the form opens on when every required one is filled already (a port
    # that may be left empty, but rarely is).
    first: str = ""


@dataclass(frozen=True)
class Confirm:
    """A question before a destructive step; ``target`` names what it acts on."""

    question: str
    target: str
    verb: str


@dataclass(frozen=True)
class Outcome:
    """What a successful call says; ``show`` builds a dialog for a result to read."""

    message: str
    show: Callable[[], Screen[object]] | None = None


@dataclass(frozen=True)
class Choice:
    label: str
    value: str


@dataclass(frozen=True)
class Pick(Generic[Item]):
    """Choose one of a list the service gives (the instances a floating IP may go to)."""

    title: Callable[[Item], str]
    choices: Callable[[NetconAPI, Item], list[Choice]]
    empty: Callable[[Item], str]


@dataclass(frozen=True)
class PickMany(Generic[Item]):
    """Tick any of a list the service gives, some ticked already (an instance's groups):
    the call gets the ticked values as ``chosen`` and the ones ticked before as
    ``before``."""

    title: Callable[[Item], str]
    choices: Callable[[NetconAPI, Item], list[tuple[Choice, bool]]]
    empty: Callable[[Item], str]


# -- what an action sees ------------------------------------------------------------------


@dataclass(frozen=True)
class Known:
    """Names the console has read, for pickers: projects, pools, hosts."""

    projects: tuple[str, ...] = ()
    pools: tuple[str, ...] = ()
    hosts: tuple[str, ...] = ()


@dataclass(frozen=True)
class Situation:
    """Where an action is started from: the settings, the narrowed scope, known names,
    and the project in view (the scope's, or the highlighted row's) to start forms on."""

    settings: Settings
    scope: Scope
    known: Known
    project: str = ""


@dataclass(frozen=True)
class BaseAction:
    id: str  # binding id, rebindable under [keys] in netcon.toml
    key: str
    label: str
    # Place in the footer (smaller first); None keeps it to `?` and the palette.
    footer: int | None = None
    # Changes state: hidden in read-only mode.
    mutating: bool = True
    # The change waits for the host's apply (a bridge, a NAT element, dnsmasq).
    host_change: bool = True


@dataclass(frozen=True)
class RowAction(BaseAction, Generic[Item]):
    """An action on the highlighted row, or on every marked row when ``bulk``."""

    call: Callable[[NetconAPI, Item, Values], Outcome] | None = None
    # Said instead of asking when the call would be refused anyway.
    refuse: Callable[[Item], str | None] = field(default=lambda item: None)
    pick: Pick[Item] | None = None
    pick_many: PickMany[Item] | None = None
    form: Callable[[Situation, Item], Form] | None = None
    confirm: Callable[[Item, Values], Confirm] | None = None
    # With marks: one confirmation naming the count, then the call for each row.
    bulk: bool = False
    # For a bulk confirmation: how a row is named, and the verb in the past tense.
    name: Callable[[Item], str] = field(default=lambda item: str(item))
    past: str = "done"
    # A reading action that opens a screen of its own (the host plan), read in a worker.
    open: Callable[[NetconAPI, Item], Callable[[], Screen[object]]] | None = None
    # A reading action that leads to another view (a group's members).
    goto: Callable[[Item], Drill] | None = None
    # Acts on the machine the console runs on: refused on another host's row.
    this_host_only: bool = False


@dataclass(frozen=True)
class ViewAction(BaseAction):
    """An action on the view itself (create something): no row needed."""

    call: Callable[[NetconAPI, Values, Scope], Outcome] | None = None
    pick_many: PickMany[Scope] | None = None
    form: Callable[[Situation], Form] | None = None
    confirm: Callable[[Values], Confirm] | None = None


@dataclass(frozen=True)
class Drill:
    """Where Enter leads: a view narrowed to a scope, or a dialog read in a worker."""

    view: str = ""
    scope: Scope = field(default_factory=dict)
    crumb: str = ""
    open: Callable[[NetconAPI], Callable[[], Screen[object]]] | None = None


@dataclass(frozen=True)
class ViewSpec(Generic[Item]):
    name: str
    title: str
    aliases: tuple[str, ...]
    noun: tuple[str, str]  # singular, plural
    columns: tuple[Column, ...]
    cells: Callable[[Item], tuple[str, ...]]
    key: Callable[[Item], Hashable]
    detail: Callable[[Item], Content]
    # A small listing, every row at once...
    fetch: Callable[[NetconAPI, Scope], Sequence[Item]] | None = None
    # ...or a large one, a window at a time: (api, scope, search, offset, limit).
    fetch_page: Callable[[NetconAPI, Scope, Search, int, int], Page[Item]] | None = None
    drill: Callable[[Item], Drill | None] = field(default=lambda item: None)
    actions: tuple[RowAction[Item] | ViewAction, ...] = ()
    # What an empty listing says: what to do first.
    empty: str = "nothing here"
    # The host a row's state lives on and the names the host knows it by, to mark a
    # row whose change the host has not applied yet.
    host: Callable[[Item], str | None] = field(default=lambda item: None)
    subjects: Callable[[Item], tuple[str, ...]] = field(default=lambda item: ())
    # A row whose state lives on every host that needs it (a security group, in the
    # filter of each host its members run on): marked while any host owes it.
    every_host: bool = False
    # A view reached only by Enter (a group's rules): not offered by `:`.
    listed: bool = True
    # The column that shows how many changes a row's host still owes (kept up to date
    # from what the screen read last, the same count as the header's), and whether
    # a row stands for its host's whole plan (the hosts view).
    pending_column: int | None = None
    whole_plan: bool = False
    # `d`: what a row owns beyond its own fields, read from the service (a network's
    # instances), as label/value pairs under the row's every field.
    owns: Callable[[NetconAPI, Item], Sequence[tuple[str, object]]] = field(
        default=lambda api, item: ()
    )
    # `y`: the text that names a row (its address, its name); the first cell if None.
    copy: Callable[[Item], str] | None = None
    # Newest rows first (the audit log): the cursor on the first row follows new ones.
    newest_first: bool = False

    @property
    def paged(self) -> bool:
        return self.fetch_page is not None


@dataclass(frozen=True)
class Search:
    """A filter as typed: ``!`` negates it; regular-expression characters make it one."""

    text: str = ""
    negate: bool = False
    regex: bool = False

    @classmethod
    def parse(cls, typed: str) -> Search:
        """``!`` negates; text with regular-expression characters is a pattern when it
        compiles, else (``[b`` half typed) plain text."""
        text = typed.strip()
        negate = text.startswith("!")
        if negate:
            text = text[1:].strip()
        regex = any(c in text for c in "^$*+?()[]{}|\\")
        if regex:
            try:
                re.compile(text)
            except re.error:
                regex = False
        return cls(text, negate, regex)

    def __bool__(self) -> bool:
        return bool(self.text)


# -- drawing helpers ----------------------------------------------------------------------


def text(value: object) -> str:
    """A cell: '-' for nothing, yes/no, seconds-precision times."""
    if value is None:
        return "-"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, datetime):
        return value.strftime("%Y-%m-%d %H:%M:%S")
    return str(value)


def lines(pairs: Sequence[tuple[str, object]]) -> Content:
    """Label/value lines for a detail pane. Content, never markup: values such as
    audit JSON hold brackets that markup would read as tags."""
    width = max(len(label) for label, _ in pairs)
    parts: list[str | tuple[str, str]] = []
    for number, (label, value) in enumerate(pairs):
        if number:
            parts.append("\n")
        parts += [(label.ljust(width), "bold"), "  ", text(value)]
    return Content.assemble(*parts)


def choice(field_name: str, options: tuple[str, ...]) -> Callable[[str], str]:
    """A check for a value out of a fixed set (the picker offers only these)."""
    from core.errors import InvalidInput

    def check(value: str) -> str:
        if value not in options:
            raise InvalidInput(field_name, f"{value!r} must be one of {', '.join(options)}")
        return value

    return check
