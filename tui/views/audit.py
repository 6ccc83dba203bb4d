"""The audit log: every change of state, who made it, before and after; Enter shows all."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import TYPE_CHECKING

from textual.content import Content

from core.views import AuditView
from tui.views.base import Column, Drill, ViewSpec, lines, text

if TYPE_CHECKING:
    from textual.screen import Screen

    from core.service.api import NetconAPI


def _pretty(value: str | None) -> str:
    if value is None:
        return "(nothing)"
    try:
        return json.dumps(json.loads(value), indent=2, sort_keys=True)
    except ValueError:
        return value


def _full(a: AuditView) -> Content:
    return Content.assemble(
        lines([("event", a.id), ("at", a.at), ("actor", a.actor), ("action", a.action),
               ("target", a.target)]),
        "\n\n", ("before", "bold"), "\n", _pretty(a.before),
        "\n\n", ("after", "bold"), "\n", _pretty(a.after),
    )


def _open(api: NetconAPI, a: AuditView) -> Callable[[], Screen[object]]:
    def show() -> Screen[object]:
        from tui.widgets.dialogs import TextDialog

        return TextDialog(f"Audit event {a.id}: {a.action} {a.target}", _full(a))

    return show


AUDIT: ViewSpec[AuditView] = ViewSpec(
    name="audit",
    title="Audit log",
    aliases=("audit", "log", "events"),
    noun=("event", "events"),
    columns=(
        Column("id", "#", 5, numeric=True, priority=3, min_width=4),
        Column("at", "At", 19, priority=2, min_width=19),
        Column("actor", "Actor", 10, priority=4, min_width=8),
        Column("action", "Action", 18),
        Column("target", "Target", 24, priority=1),
    ),
    cells=lambda a: (str(a.id), text(a.at), a.actor, a.action, a.target),
    key=lambda a: a.id,
    detail=lambda a: lines(
        [("event", a.id), ("at", a.at), ("actor", a.actor), ("action", a.action),
         ("target", a.target), ("before", a.before), ("after", a.after)]
    ),
    fetch=lambda api, scope: api.list_audit(limit=1000),
    drill=lambda a: Drill(open=lambda api: _open(api, a)),
    newest_first=True,
    empty="Nothing recorded yet: every change made here or by `netcon` is listed",
)
