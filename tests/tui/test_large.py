"""The fixed-IP view of a /16 pages from the database instead of holding 65,536 rows."""

from __future__ import annotations

from collections.abc import Callable

from core.service import NetconService
from tests.tui.conftest import settle
from tui.app import NetconApp
from tui.screens.main import PAGE_SIZE
from tui.widgets.virtual_table import PagedSource


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
