"""The fixed-IP view of a /16 pages from the database instead of holding 65,536 rows."""

from __future__ import annotations

from collections.abc import Callable

from core.service import NetconService
from tests.tui.conftest import settle
from tui.app import NetconApp
from tui.screens.main import PAGE_SIZE
from tui.widgets.virtual_table import KEPT_PAGES, PagedSource, Row


def test_paged_source_holds_the_windows_used_last() -> None:
    asked: list[int] = []
    source = PagedSource(10_000, 100, asked.append, keep=3)

    def window(offset: int) -> list[Row]:
        return [Row(i, (str(i),), i) for i in range(offset, offset + 100)]

    for number in range(5):
        assert source.row(number * 100) is None  # not read yet: asked for, once
        assert source.row(number * 100 + 1) is None
        source.put(number * 100, window(number * 100))
    assert asked == [0, 100, 200, 300, 400]
    assert source.held == 300  # windows 2, 3 and 4
    row = source.row(250)
    assert row is not None and row.cells == ("250",)
    # Window 0 was let go: scrolled back to, it is asked for again...
    assert source.row(5) is None and asked[-1] == 0
    source.put(0, window(0))
    # ...and the one used longest ago (3; 2 was just read) makes room for it.
    assert source.row(350) is None and asked[-1] == 300
    assert source.row(205) is not None and source.row(5) is not None
    assert source.held == 300


async def test_slash16_pages_on_demand(
    make_app: Callable[..., NetconApp], demo_service: NetconService
) -> None:
    demo_service.create_networks("172.16.0.0/16", 1, 65536, manager="flat", bridge="brbig",
                                 label="big")
    app = make_app()
    async with app.run_test(size=(80, 24)) as pilot:
        await settle(pilot)
        main = app.main
        await pilot.press("G")  # the newest network is listed last
        await settle(pilot)
        assert main.table.current_row is not None
        assert main.table.current_row.item.cidr == "172.16.0.0/16"
        await pilot.press("enter")
        await settle(pilot)
        source = main.table.source
        assert isinstance(source, PagedSource)
        assert source.total == 65536
        # Only the window on screen was fetched, not the whole network.
        assert len(source._pages) == 1 and len(source._pages[0]) == PAGE_SIZE

        await pilot.press("G")
        await settle(pilot)
        assert main.table.current_row is not None
        assert main.table.current_row.item.address == "172.16.255.255"
        assert len(source._pages) == 2

        # Paging through the network holds a few windows, never the whole of it.
        for index in range(0, 65536, 16 * PAGE_SIZE):
            main.table.move_cursor(index)
            await pilot.pause()
        await settle(pilot)
        assert source.held <= KEPT_PAGES * PAGE_SIZE
        await pilot.press("g")
        await settle(pilot)
        assert main.table.current_row is not None
        assert main.table.current_row.item.address == "172.16.0.0"

        # Sorting a paged view flips the address order in the database's paging.
        await pilot.press("s")
        await settle(pilot)
        await pilot.press("g")
        await settle(pilot)
        assert main.table.current_row is not None
        assert main.table.current_row.item.address == "172.16.255.255"

        # The filter goes to the database and comes back with the matching count.
        await pilot.press("slash", "full_stop", "2", "5", "5", "full_stop", "7")
        await settle(pilot)
        assert main.table.source.total == demo_service.list_fixed_ips(
            network="172.16.0.0/16", search=".255.7", limit=0
        ).total
        assert main.table.source.total > 0
        # Negated, and as a pattern, in the database too.
        await pilot.press("ctrl+u", *"!free")
        await settle(pilot)
        assert main.table.source.total == 3  # network, gateway and broadcast: reserved
        await pilot.press("ctrl+u", *"^172", "full_stop", *"16", "full_stop", *"9", "full_stop",
                          *"9$")
        await settle(pilot)
        assert main.table.source.total == 1
        await pilot.press("escape")
        await settle(pilot)
        assert main.table.source.total == 65536
