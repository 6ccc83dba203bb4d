"""The row cursor: what a move costs the screen, and that nothing undoes it."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from textual._compositor import ChopsUpdate
from textual.screen import Screen
from textual.widget import Widget

from tests.tui.conftest import settle
from tests.tui.test_flows import press_at_once
from tui.app import NetconApp

MakeApp = Callable[..., NetconApp]


def current_name(app: NetconApp) -> Any:
    row = app.main.table.current_row
    assert row is not None
    return row.item


async def test_a_key_pressed_while_the_view_is_read_again_is_kept(make_app: MakeApp) -> None:
    # ctrl+r reads the rows in a worker; the Down after it arrives first. The rows that
    # come back keep the row the cursor is on then, not the one it was on at ctrl+r.
    app = make_app(start="instances")
    async with app.run_test(size=(80, 24)) as pilot:
        await settle(pilot)
        table = app.main.table
        second = table.source.row(1)
        assert second is not None
        press_at_once(pilot, "ctrl+r", "down")
        await settle(pilot)
        assert table.cursor == 1
        assert current_name(app) is not second.item  # a fresh read...
        assert current_name(app).name == second.item.name  # ...of the same row


async def test_a_refresh_never_covers_the_screen(
    make_app: MakeApp, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The header says "loading…" while rows are read; covering the screen with a
    # loading indicator would repaint all of it twice per refresh, and the indicator
    # would take the keys pressed meanwhile.
    covered: list[Widget] = []
    set_loading = Widget.set_loading

    def spy(widget: Widget, loading: bool) -> None:
        if loading:
            covered.append(widget)
        set_loading(widget, loading)

    monkeypatch.setattr(Widget, "set_loading", spy)
    app = make_app()
    async with app.run_test(size=(80, 24)) as pilot:
        await settle(pilot)
        main = app.main
        main.reload()
        assert main.reading
        assert "loading…" in str(main.query_one("#header").render())
        await settle(pilot)
        assert not main.reading
        assert not covered


async def test_a_cursor_move_draws_two_rows_and_the_detail_in_one_frame(
    make_app: MakeApp, monkeypatch: pytest.MonkeyPatch
) -> None:
    # What a key costs a browser console is what the screen sends for it: the row the
    # cursor left, the row it reached and the detail pane, in the same frame, with no
    # layout of the whole screen.
    app = make_app()
    async with app.run_test(size=(111, 28)) as pilot:
        await settle(pilot)
        main = app.main
        frames: list[object] = []
        display = app._display

        def record(screen: Screen[Any], update: Any) -> None:
            if update is not None:  # Textual draws nothing for None
                frames.append(update)
            display(screen, update)

        monkeypatch.setattr(app, "_display", record)
        table = main.table.region
        detail = main.query_one("#detail").region
        press_at_once(pilot, "down")
        await settle(pilot)
        assert main.table.cursor == 1
        assert "(id 2," in str(main.query_one("#detail").render())
        assert len(frames) == 1
        frame = frames[0]
        assert isinstance(frame, ChopsUpdate)
        rows = {y for y, _, _ in frame.spans}
        # Line 0 of the table is its header; rows 0 and 1 are the next two lines.
        assert rows - set(range(detail.y, detail.bottom)) == {table.y + 1, table.y + 2}
        assert rows & set(range(detail.y, detail.bottom))


async def test_a_refresh_that_reads_the_same_rows_redraws_only_the_header(
    make_app: MakeApp, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Every console reads its view again every few seconds; when nothing changed, only
    # the header's "loading…" and its time are drawn, and the screen is not laid out.
    app = make_app()
    async with app.run_test(size=(111, 28)) as pilot:
        await settle(pilot)
        main = app.main
        press_at_once(pilot, "down")
        await settle(pilot)
        frames: list[object] = []
        display = app._display

        def record(screen: Screen[Any], update: Any) -> None:
            if update is not None:  # Textual draws nothing for None
                frames.append(update)
            display(screen, update)

        monkeypatch.setattr(app, "_display", record)
        layouts: list[object] = []
        refresh_layout = main._refresh_layout

        def count_layout(*args: Any, **kwargs: Any) -> None:
            layouts.append(args)
            refresh_layout(*args, **kwargs)

        monkeypatch.setattr(main, "_refresh_layout", count_layout)
        press_at_once(pilot, "ctrl+r")
        await settle(pilot)
        assert main.table.cursor == 1 and not main.reading
        assert frames and not layouts
        header = main.query_one("#header").region
        for frame in frames:
            assert isinstance(frame, ChopsUpdate)
            assert {y for y, _, _ in frame.spans} == {header.y}
