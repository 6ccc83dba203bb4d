"""What the header, the breadcrumbs and the detail pane say about where the admin is:
the database and its context, what the host still owes, the view, filter, marks, sort
and a call at work. Pure functions of the state, drawn as Content (never markup: a URL
or a filter may hold brackets)."""

from __future__ import annotations

import time
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from textual.content import Content

from tui.widgets.virtual_table import ListSource, TableSource

if TYPE_CHECKING:
    from core.views import OwingView
    from tui.context import ConsoleContext
    from tui.pending import Pending
    from tui.screens.state import ViewState
    from tui.views.base import ViewSpec

PENDING_LINES = 8
Parts = list[str | tuple[str, str]]


def short_url(url: str, width: int = 28) -> str:
    """The database URL for an 80-column header: scheme and file name survive."""
    if len(url) <= width:
        return url
    scheme, _, rest = url.partition("://")
    tail = rest[-(width - len(scheme) - 4):]
    return f"{scheme}://…{tail}"


def header(
    context: ConsoleContext,
    pending: Pending,
    *,
    paused: bool,
    loading: bool,
    last_refresh: str,
    width: int = 0,
) -> Content:
    """netcon, the context's label, read-only, the database, the namespace, what this
    host owes, and when the view was read. Within ``width`` cells (0: no limit) the
    database URL gives way first, so what the host owes and the time stay in view."""
    settings = context.config
    head: Parts = [("netcon", "bold")]
    if context.served_by is not None:
        head += [" ", (f" browser@{context.served_by} ", "bold reverse")]
    if context.style is not None:
        head += [" ", (f" {context.style.label} ", "bold reverse")]
    if context.read_only:
        head += [" ", (" read-only ", "bold $text-warning on $warning-muted")]
    tail: Parts = []
    if settings.netns:
        tail += ["  ns ", (settings.netns, "bold")]
    tail += ["  ", *_owed(settings.host, pending)]
    if paused:
        tail += ["  ", ("paused", "bold $text-warning")]
    elif loading:
        tail.append("  loading…")
    else:
        tail.append(f"  {last_refresh}")
    url = context.database
    if width:
        room = width - Content.assemble(*head, *tail).cell_length - len("  db ")
        url = short_url(url, room) if room >= 16 else ""
    middle: Parts = ["  db ", (url, "bold")] if url else []
    return Content.assemble(*head, *middle, *tail)


def _owed(host: str, pending: Pending) -> Parts:
    if not pending.known:
        return [host]
    if host in pending.errors:
        return [host, (" plan unreadable", "bold $text-error")]
    if host in pending.failed:
        return [(f"{host} apply failed", "bold $text-error")]
    count = pending.count(host)
    if count:
        # Changes, as `netcon host list` counts them (never a plan's operations).
        return [(f"{host} ~{count} pending", "bold $text-warning")]
    plan = pending.plans.get(host)
    if plan is not None and plan.operations:
        # Nothing owed, yet the host is not as the database wants it (changed by hand,
        # or by a change recorded before): its plan says how (`:hosts`, P).
        return [(f"{host} differs", "bold $text-warning")]
    if count is None:
        return [host]
    return [f"{host} applied"]


def crumbs(
    stack: Sequence[ViewState],
    state: ViewState,
    source: TableSource,
    working: tuple[str, float] | None,
) -> Content:
    parts: Parts = []
    for earlier in stack:
        parts += [earlier.crumb or earlier.spec.title, " › "]
    parts.append((state.crumb or state.spec.title, "bold"))
    if state.typed and isinstance(source, ListSource):
        parts.append(f" ({source.total} of {len(source.all_rows)})")
    elif state.typed:
        parts.append(f" ({source.total} match)")
    else:
        parts.append(f" ({source.total})")
    if state.typed:
        parts += ["  ", (f"/{state.typed}", "bold $accent")]
    if state.marks:
        parts += ["  ", (f"{len(state.marks)} marked", "bold $accent")]
    if state.sort_column is not None:
        column = state.spec.columns[state.sort_column]
        parts.append(f"  sort {column.label} {'▼' if state.sort_descending else '▲'}")
    if working is not None:
        what, started = working
        seconds = time.monotonic() - started
        parts += ["  ", (f"{what}… {seconds:.1f} s", "bold $text-warning")]
    return Content.assemble(*parts)


def _agent_detail(host: str, pending: Pending) -> Parts:
    """Another host, from its agent's records: the changes it owes and its last failure."""
    parts: Parts = []
    owed = pending.changes.get(host)
    if owed is not None and owed.changes:
        numbers = ", ".join(str(n) for n in owed.changes[:PENDING_LINES])
        more = "…" if len(owed.changes) > PENDING_LINES else ""
        parts += [
            "\n", (f"pending on {host}", "bold $text-warning"),
            f"  {len(owed.changes)} change(s): {numbers}{more}",
        ]
    if host in pending.failed:
        parts += ["\n", ("last apply failed", "bold $text-error"), f"  {pending.failed[host]}"]
    return parts


def _owing_detail(pending: Pending, subjects: tuple[str, ...]) -> Parts:
    """Each host that still owes a change to this row, and what: this host's plan
    operation by operation, another host's changes as its agent's record has them."""
    parts: Parts = []
    for host, lines in pending.owing(subjects).items():
        parts += ["\n", (f"pending on {host}", "bold $text-warning")]
        if host in pending.plans:
            parts.append(f"  {len(lines)} operation(s)")
        for line in lines[:PENDING_LINES]:
            parts.append(f"\n  ~ {line}")
        if len(lines) > PENDING_LINES:
            parts.append(f"\n  … {len(lines) - PENDING_LINES} more")
    return parts


def pending_detail(
    spec: ViewSpec[Any], item: object, pending: Pending, this_host: str, read_only: bool
) -> Parts:
    """What the row's host still owes that touches this row (all of it for a host)."""
    if not pending.known:
        return []
    if spec.every_host:
        return _owing_detail(pending, spec.subjects(item))
    host = spec.host(item) or this_host
    if spec.whole_plan:
        if host in pending.errors:
            return ["\n", ("pending", "bold"), f"  plan unreadable: {pending.errors[host]}"]
        plan = pending.plans.get(host)
        if plan is None:
            return _agent_detail(host, pending)
        lines = plan.describe()
        problems = list(plan.problems)
    else:
        lines = pending.touching(host, spec.subjects(item))
        problems = pending.held(host, spec.subjects(item))
    if not lines and not problems:
        if host in pending.failed:
            return ["\n", ("last apply failed", "bold $text-error"), f"  {pending.failed[host]}"]
        if spec.host(item) is not None and (host in pending.plans or host in pending.changes):
            return ["\n", (f"applied on {host}", "$text-success")]
        return []
    parts: Parts = ["\n", (f"pending on {host}", "bold $text-warning")]
    if spec.whole_plan:
        count = pending.count(host)
        if count is not None:
            parts.append(f"  {count} change(s)")
        parts.append(f"; plan: {len(lines)} operation(s)")
        parts.append(" · P shows it" + ("" if read_only else ", A applies it"))
    elif lines:
        parts.append(f"  {len(lines)} operation(s)")
    else:
        parts.append("  held back")
    for problem in problems:
        parts += ["\n  ", (f"✗ {problem}", "$text-error")]
    for line in lines[:PENDING_LINES]:
        parts.append(f"\n  ~ {line}")
    if len(lines) > PENDING_LINES:
        parts.append(f"\n  … {len(lines) - PENDING_LINES} more")
    return parts


def told(message: str, owing: OwingView | None, *, saved: bool = True) -> str:
    """What the admin is told after a change: the hosts that owe it, those that have
    applied it, or, when no host owes anything for it, that it is saved."""
    if owing is None or not (owing.pending_on or owing.applied_on):
        return f"{message} — saved" if saved else message
    text = message
    if owing.pending_on:
        text += f" — saved; pending on {', '.join(owing.pending_on)}"
    if owing.applied_on:
        text += f" — applied on {', '.join(owing.applied_on)}"
    return text
