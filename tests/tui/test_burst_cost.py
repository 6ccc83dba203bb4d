"""What keys typed in one burst cost: a key the keys after it supersede draws nothing
and reads nothing (a view the burst leaves at once, a filter's half-typed value, a
prompt's half-typed word), while every key still acts, in order (test_typeahead).

Every burst is handed to the console's driver at once (:func:`press_at_once`).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from textual.screen import Screen

from core.service import NetconService
from tests.tui.conftest import settle
from tests.tui.test_flows import press_at_once
from tui import typeahead
from tui.app import NetconApp

MakeApp = Callable[..., NetconApp]


def count_fixed_reads(
    monkeypatch: pytest.MonkeyPatch, service: NetconService
) -> list[str | None]:
    """The filters the fixed IPs view is read with, in order, from now on."""
    reads: list[str | None] = []
    list_fixed_ips = service.list_fixed_ips

    def counted(*args: Any, **kwargs: Any) -> Any:
        reads.append(kwargs.get("search"))
        return list_fixed_ips(*args, **kwargs)

    monkeypatch.setattr(service, "list_fixed_ips", counted)
    return reads


async def test_a_filter_the_next_keys_drop_is_never_read(
    make_app: MakeApp, demo_service: NetconService, monkeypatch: pytest.MonkeyPatch
) -> None:
    app = make_app()
    async with app.run_test(size=(80, 24)) as pilot:
        await settle(pilot)
        reads = count_fixed_reads(monkeypatch, demo_service)
        # Enter opens the first network's fixed IPs; `/free` Enter filters them (typed
        # while they open: the filter needs none of their rows), Esc drops the filter
        # (it waits for the rows it acts on), Esc goes back.
        press_at_once(pilot, "enter", "slash", *"free", "enter", "escape", "escape")
        await settle(pilot)
        main = app.main
        assert main.state.spec.name == "networks" and not main.stack
        # Read once, filtered: neither unfiltered as it opened, nor with the half-typed
        # filters, nor unfiltered again for the Esc that the next Esc left.
        assert reads == ["free"]


async def test_a_filter_typed_in_a_burst_is_read_once(
    make_app: MakeApp, demo_service: NetconService, monkeypatch: pytest.MonkeyPatch
) -> None:
    app = make_app()
    async with app.run_test(size=(80, 24)) as pilot:
        await settle(pilot)
        press_at_once(pilot, "enter")
        await settle(pilot)
        reads = count_fixed_reads(monkeypatch, demo_service)
        press_at_once(pilot, "slash", *"free", "enter")
        await settle(pilot)
        main = app.main
        assert main.state.typed == "free" and main.table.source.total > 0
        assert reads == ["free"]


async def test_a_burst_draws_none_of_what_its_next_keys_supersede(
    make_app: MakeApp, monkeypatch: pytest.MonkeyPatch
) -> None:
    app = make_app()
    async with app.run_test(size=(80, 24)) as pilot:
        await settle(pilot)
        crumbs: list[str] = []
        display = app._display

        def record(screen: Screen[Any], update: Any) -> None:
            if update is not None:  # Textual draws nothing for None
                crumbs.append(str(screen.query_one("#crumbs").render()))
            display(screen, update)

        monkeypatch.setattr(app, "_display", record)
        # A screen that holds the keys long is drawn anyway (the admin sees it load):
        # not here, however slow the machine running the test.
        monkeypatch.setattr(typeahead, "QUIET_LIMIT", 600.0)
        # The floating IPs are opened, and left for the projects by the keys after.
        press_at_once(pilot, "colon", *"fip", "enter", "colon", *"projects", "enter")
        await settle(pilot)
        main = app.main
        assert main.state.spec.name == "projects" and main.previous is not None
        assert main.previous.spec.name == "floating"
        # The screen was drawn: the projects, never the floating IPs on the way.
        assert crumbs and "Projects" in crumbs[-1]
        assert not [line for line in crumbs if "Floating" in line]
