"""`d` on any row: the resource in full on a screen of its own, as k9s describes one.

Every field of the row's view, what the resource owns (read from the service when `d`
is pressed, so it is current), and what its host still owes for it. `y` copies the
text as shown, through the terminal (OSC 52), so it works over SSH as well.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any, ClassVar

from textual import on
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Horizontal, VerticalScroll
from textual.content import Content
from textual.screen import Screen
from textual.widgets import Button, Label, Static

from tui.calls import Failure, ask_service
from tui.screens import status
from tui.screens.answers import ActionAnswer
from tui.views.base import ViewSpec, text

if TYPE_CHECKING:
    from tui.screens.frame import MainFrame
    from tui.screens.status import Parts

Pairs = list[tuple[str, object]]


def copy_text(spec: ViewSpec[Any], item: object, cells: Sequence[str]) -> str:
    """What `y` copies from a row: the view's own choice, else its first cell."""
    if spec.copy is not None:
        return spec.copy(item)
    return cells[0] if cells else ""


def _is_record(value: object) -> bool:
    return isinstance(value, tuple) and hasattr(value, "_fields")


def _value(value: object) -> str:
    if _is_record(value):
        return ", ".join(f"{k} {_value(v)}" for k, v in value._asdict().items())  # type: ignore[attr-defined]
    if isinstance(value, tuple | list):
        return ", ".join(_value(v) for v in value) or "-"
    return text(value)


def fields_of(item: object, prefix: str = "") -> Pairs:
    """Every field of a row's view, nested views spelled out (an instance's addresses)."""
    if not _is_record(item):
        return [("value", item)]
    pairs: Pairs = []
    for name, value in item._asdict().items():  # type: ignore[attr-defined]
        label = f"{prefix}{name.replace('_', ' ')}"
        if _is_record(value):
            pairs += fields_of(value, f"{label} ")
        elif isinstance(value, tuple) and value and all(_is_record(v) for v in value):
            for number, part in enumerate(value, 1):
                pairs.append((f"{label} {number}", _value(part)))
        else:
            pairs.append((label, _value(value)))
    return pairs


def describe(
    spec: ViewSpec[Any], item: object, owns: Sequence[tuple[str, object]], pending: Parts
) -> Content:
    """The whole text of a description: what it is and owns, what its host owes (the
    first screenful at 80x24), then every field of its row."""
    sections: list[tuple[str, Pairs]] = [("owns", list(owns))] if owns else []
    sections.append(("fields", fields_of(item)))
    width = max(len(label) for _, pairs in sections for label, _ in pairs)
    parts: list[str | Content | tuple[str, str]] = []
    for number, (heading, pairs) in enumerate(sections):
        if number:
            parts.append("\n\n")
        parts.append((heading, "bold underline"))
        for label, value in pairs:
            parts += ["\n", (label.ljust(width), "bold"), "  ", _value(value)]
        if number == 0 and pending:
            parts += ["\n", *pending]
    return Content.assemble(*parts)


class DescribeScreen(Screen[None]):
    """A full-screen, scrollable description; Esc or q returns to the table."""

    DEFAULT_CSS = """
    DescribeScreen #describe-title {
        dock: top; height: 1; width: 1fr; background: $primary; color: $text;
        text-style: bold; padding: 0 1;
    }
    DescribeScreen #describe-body { height: 1fr; padding: 0 1; background: $surface; }
    DescribeScreen #describe-keys { dock: bottom; height: 1; background: $panel; }
    DescribeScreen #describe-keys Static { width: 1fr; color: $text-muted; padding: 0 1; }
    """

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("escape,q", "close", "Back"),
        Binding("y", "copy", "Copy"),
        Binding("j", "scroll(1)", "Down", show=False),
        Binding("k", "scroll(-1)", "Up", show=False),
    ]

    def __init__(self, title: str, body: Content) -> None:
        super().__init__()
        self.title_text = title
        self.body = body

    def compose(self) -> ComposeResult:
        yield Label(Content(self.title_text), id="describe-title")
        with VerticalScroll(id="describe-body", can_focus=True):
            yield Static(self.body, id="describe-text")
        with Horizontal(id="describe-keys"):
            yield Static("↑↓ PgUp PgDn scroll · y copy · Esc back")
            yield Button("Back", id="back", compact=True)

    def on_mount(self) -> None:
        self.query_one("#describe-body").focus()

    @property
    def plain(self) -> str:
        return f"{self.title_text}\n\n{self.body.plain}\n"

    def action_copy(self) -> None:
        self.app.copy_to_clipboard(self.plain)
        self.notify(f"{self.title_text} copied to the clipboard", timeout=3)

    def action_scroll(self, lines: int) -> None:
        self.query_one("#describe-body", VerticalScroll).scroll_relative(
            y=lines, animate=False
        )

    @on(Button.Pressed, "#back")
    def action_close(self) -> None:
        self.dismiss(None)


def describe_current(screen: MainFrame) -> None:
    """Describe the cursor's row: what it owns is read in a worker, then shown."""
    row = screen.table.current_row
    if row is None:
        return
    spec, item = screen.state.spec, row.item
    pending = status.pending_detail(
        spec, item, screen.pending, screen.this_host(), screen.context.read_only
    )
    if not screen.pending.known and spec.host(item) is not None:
        # Never "applied" by silence: say that it is not known.
        pending = ["\n", (f"on {spec.host(item)}", "bold"), "  applied or not: not read yet"]
    noun = spec.noun[0]
    title = f"{noun[:1].upper()}{noun[1:]} {copy_text(spec, item, row.cells)}"

    screen.show_working("Describing")
    ask_service(screen, screen.service, lambda api: list(spec.owns(api, item)),
                lambda owns: Described(title, spec, item, owns, pending),
                DescribeRefused, group="action")  # fmt: skip


class Described(ActionAnswer):
    """What a described row owns, read; the full-screen view of it follows."""

    def __init__(
        self, title: str, spec: ViewSpec[Any], item: object,
        owns: list[tuple[str, object]], pending: Parts,
    ) -> None:  # fmt: skip
        super().__init__()
        self.title, self.spec, self.item = title, spec, item
        self.owns, self.pending = owns, pending

    def deliver(self, screen: MainFrame) -> None:
        screen.show_working(None)
        body = describe(self.spec, self.item, self.owns, self.pending)
        screen.app.push_screen(DescribeScreen(self.title, body))


class DescribeRefused(ActionAnswer):
    def __init__(self, failure: Failure) -> None:
        super().__init__()
        self.failure = failure

    def deliver(self, screen: MainFrame) -> None:
        screen.show_working(None)
        screen.notify(self.failure.message, title="Describe failed", severity="error")


def copy_current(screen: MainFrame) -> None:
    """`y` on a row: its name or address, to the terminal's clipboard (OSC 52)."""
    row = screen.table.current_row
    if row is None:
        return
    copied = copy_text(screen.state.spec, row.item, row.cells)
    screen.app.copy_to_clipboard(copied)
    screen.notify(f"Copied {copied}", timeout=2)
