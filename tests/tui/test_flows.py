"""The console's main flows, driven by keys through Pilot against a real demo database."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from textual.keys import _character_to_key
from textual.pilot import Pilot

from core.service import NetconService
from tests.tui.conftest import settle
from tui.app import NetconApp
from tui.screens.help import HelpScreen
from tui.widgets.dialogs import ConfirmDialog, FormDialog, PickDialog

MakeApp = Callable[..., NetconApp]


async def type_text(pilot: Pilot[Any], text: str) -> None:
    await pilot.press(*[_character_to_key(c) for c in text])


def messages(app: NetconApp) -> list[str]:
    return [str(n.message) for n in app._notifications]


async def test_create_network_from_dialog(make_app: MakeApp, demo_service: NetconService) -> None:
    app = make_app()
    async with app.run_test(size=(80, 24), notifications=True) as pilot:
        await settle(pilot)
        await pilot.press("n")
        await settle(pilot)
        assert isinstance(app.screen, FormDialog)
        await type_text(pilot, "192.168.50.0/24")
        for _ in range(5):  # to Manager
            await pilot.press("tab")
        await type_text(pilot, "flatdhcp")
        await pilot.press("tab")
        await type_text(pilot, "lab")
        await pilot.press("tab")
        await type_text(pilot, "brlab")
        await pilot.press("enter")
        await settle(pilot)
        assert not isinstance(app.screen, FormDialog)
        assert messages(app) == ["Created 192.168.50.0/24"]
        network = demo_service.get_network("192.168.50.0/24")
        assert (network.manager, network.label, network.bridge) == ("flatdhcp", "lab", "brlab")
        assert "192.168.50.0/24" in [row.cells[0] for row in app.main.table.source.rows]


async def test_invalid_field_blocks_submit(make_app: MakeApp, demo_service: NetconService) -> None:
    app = make_app()
    async with app.run_test(size=(80, 24)) as pilot:
        await settle(pilot)
        before = len(demo_service.list_networks())
        await pilot.press("n")
        await settle(pilot)
        await type_text(pilot, "10.0.0.1/16")
        await pilot.press("enter")
        await settle(pilot)
        # The form stays open, naming the rule the core applies.
        assert isinstance(app.screen, FormDialog)
        error = str(app.screen.query_one("#error-fixed_range").render())
        assert "host bits set" in error
        await pilot.press("escape")
        await settle(pilot)
        assert not isinstance(app.screen, FormDialog)
        assert len(demo_service.list_networks()) == before


async def test_launch_instance(make_app: MakeApp, demo_service: NetconService) -> None:
    app = make_app(start="instances")
    async with app.run_test(size=(80, 24)) as pilot:
        await settle(pilot)
        await pilot.press("n")
        await settle(pilot)
        # The project field starts on the highlighted instance's project (beta).
        await pilot.press("tab")
        await type_text(pilot, "worker7")
        await pilot.press("enter")
        await settle(pilot)
        launched = {i.name: i for i in demo_service.list_instances()}["worker7"]
        assert launched.project == "beta"
        assert launched.addresses and launched.addresses[0].address.startswith("10.0.1.")
        assert "worker7" in [row.cells[0] for row in app.main.table.source.rows]


async def test_allocate_associate_disassociate(
    make_app: MakeApp, demo_service: NetconService
) -> None:
    app = make_app(start="floating")
    async with app.run_test(size=(80, 24)) as pilot:
        await settle(pilot)
        await pilot.press("n")
        await settle(pilot)
        form = app.screen
        assert isinstance(form, FormDialog)
        form.query_one("#field-project").value = "alpha"  # type: ignore[attr-defined]
        await pilot.press("enter")
        await settle(pilot)
        allocated = [f for f in demo_service.list_floating_ips() if f.project == "alpha"]
        assert len(allocated) == 4
        new = next(f for f in allocated if f.address == "203.0.113.5")
        assert new.instance is None

        # Select it, one key, a filtered list of alpha's instances, Enter.
        app.main.table.move_cursor(app.main.table.source.index_of(new.id))
        await settle(pilot)
        await pilot.press("a")
        await settle(pilot)
        assert isinstance(app.screen, PickDialog)
        names = [value for _label, value in app.screen.choices]
        assert names == ["db1", "web1", "web2"]
        await type_text(pilot, "db")
        await pilot.press("enter")
        await settle(pilot)
        associated = {f.address: f for f in demo_service.list_floating_ips()}["203.0.113.5"]
        assert (associated.instance, associated.fixed_address) == ("db1", "10.0.0.5")
        assert app.main.table.current_row is not None
        assert app.main.table.current_row.item.instance == "db1"  # cursor stayed on it

        await pilot.press("x")
        await settle(pilot)
        assert isinstance(app.screen, ConfirmDialog)
        assert app.screen.target == "203.0.113.5"
        await pilot.press("tab", "enter")
        await settle(pilot)
        released = {f.address: f for f in demo_service.list_floating_ips()}["203.0.113.5"]
        assert released.instance is None and released.project == "alpha"


async def test_delete_asks_and_escape_keeps(make_app: MakeApp, demo_service: NetconService) -> None:
    app = make_app()
    async with app.run_test(size=(80, 24)) as pilot:
        await settle(pilot)
        await pilot.press("G")  # the flat 10.20.0.0/24 network ...
        await pilot.press("up", "up")  # ... up to the unused VLAN network 10.0.3.0/24
        await settle(pilot)
        assert app.main.table.current_row.item.cidr == "10.0.3.0/24"  # type: ignore[union-attr]
        await pilot.press("D")
        await settle(pilot)
        assert isinstance(app.screen, ConfirmDialog)
        assert app.screen.target == "10.0.3.0/24"
        # Enter on the focused button is Cancel: deleting takes a deliberate move.
        await pilot.press("enter")
        await settle(pilot)
        assert "10.0.3.0/24" in [n.cidr for n in demo_service.list_networks()]
        await pilot.press("D")
        await settle(pilot)
        await pilot.press("escape")
        await settle(pilot)
        assert "10.0.3.0/24" in [n.cidr for n in demo_service.list_networks()]
        await pilot.press("D")
        await settle(pilot)
        await pilot.press("right", "enter")
        await settle(pilot)
        assert "10.0.3.0/24" not in [n.cidr for n in demo_service.list_networks()]


async def test_core_error_is_a_notification(make_app: MakeApp, demo_service: NetconService) -> None:
    app = make_app()
    async with app.run_test(size=(80, 24), notifications=True) as pilot:
        await settle(pilot)
        rows_before = [row.cells for row in app.main.table.source.rows]
        # 10.0.0.0/24 holds alpha's instances: the core refuses to delete it.
        await pilot.press("D")
        await settle(pilot)
        await pilot.press("right", "enter")
        await settle(pilot)
        assert app.is_running
        # The core's own one-line message, word for word.
        assert messages(app) == [
            "network: 10.0.0.0/24 has 3 address(es) in use by instances or DHCP leases; "
            "terminate them first"
        ]
        assert [row.cells for row in app.main.table.source.rows] == rows_before
        assert app.main.table.current_row.item.cidr == "10.0.0.0/24"  # type: ignore[union-attr]


async def test_read_only_hides_actions(make_app: MakeApp, demo_service: NetconService) -> None:
    app = make_app(read_only=True)
    async with app.run_test(size=(80, 24)) as pilot:
        await settle(pilot)
        main = app.main
        for action in main.MUTATING:
            assert main.check_action(action, ()) is False
        shown = {b.binding.action for b in main.active_bindings.values()}
        assert not shown & main.MUTATING
        await pilot.press("n")
        await pilot.press("D")
        await settle(pilot)
        assert app.screen is main
        from tui.commands import NetconCommands

        provider = NetconCommands(main)
        titles = [text for text, _run, _help in provider._commands()]
        assert "View: Networks" in titles
        assert not [t for t in titles if t.startswith("Networks:")]


async def test_read_only_when_database_cannot_be_written(
    make_app: MakeApp, demo_service: NetconService, monkeypatch: Any
) -> None:
    monkeypatch.setattr(demo_service.db, "writable", lambda: False)
    app = make_app()
    async with app.run_test(size=(80, 24)) as pilot:
        await settle(pilot)
        assert app.read_only
        assert app.main.check_action("create_network", ()) is False


async def test_palette_offers_actions_of_the_view(make_app: MakeApp) -> None:
    app = make_app(start="floating")
    async with app.run_test(size=(80, 24)) as pilot:
        await settle(pilot)
        from tui.commands import NetconCommands

        titles = [t for t, _run, _help in NetconCommands(app.main)._commands()]
        for wanted in (
            "Floating IPs: Associate", "Floating IPs: Allocate FIP", "Floating IPs: Release",
            "Floating IPs: New range", "Floating IPs: Delete range", "Theme: ansi-dark",
            "View: Audit log",
        ):
            assert wanted in titles


async def test_command_line_aliases_and_back(make_app: MakeApp) -> None:
    app = make_app(start="projects")
    async with app.run_test(size=(80, 24), notifications=True) as pilot:
        await settle(pilot)
        await pilot.press("colon", *"vlans", "enter")
        await settle(pilot)
        assert app.main.state.resource.name == "networks"
        await pilot.press("colon", *"nope", "enter")
        await settle(pilot)
        assert app.main.state.resource.name == "networks"
        assert any("no view named" in m for m in messages(app))
        # Drill: network -> its fixed IPs; Esc comes back to the same row.
        await pilot.press("down")
        await pilot.press("enter")
        await settle(pilot)
        assert app.main.state.resource.name == "fixed"
        assert app.main.table.source.total == 256
        await pilot.press("escape")
        await settle(pilot)
        assert app.main.state.resource.name == "networks"
        assert app.main.table.current_row.item.cidr == "10.0.1.0/24"  # type: ignore[union-attr]


async def test_filter_and_escape(make_app: MakeApp) -> None:
    app = make_app()
    async with app.run_test(size=(80, 24)) as pilot:
        await settle(pilot)
        await pilot.press("enter")  # fixed IPs of 10.0.0.0/24, paged from the database
        await settle(pilot)
        await pilot.press("slash", *"web")
        await settle(pilot)
        assert app.main.table.source.total == 2
        await pilot.press("enter")  # leaves the prompt, keeps the filter
        await settle(pilot)
        assert app.main.state.search == "web"
        await pilot.press("escape")
        await settle(pilot)
        assert app.main.table.source.total == 256
        assert app.main.state.resource.name == "fixed"


async def test_sort_cycles_and_header_click(make_app: MakeApp) -> None:
    app = make_app(start="instances")
    async with app.run_test(size=(80, 24)) as pilot:
        await settle(pilot)
        table = app.main.table
        await pilot.press("s", "s")
        names = [table.source.row(i).cells[0] for i in range(table.source.total)]  # type: ignore[union-attr]
        assert names == sorted(names, reverse=True)
        await pilot.click("#table", offset=(16, 0))  # the Project header
        await settle(pilot)
        projects = [table.source.row(i).cells[1] for i in range(table.source.total)]  # type: ignore[union-attr]
        assert projects == sorted(projects)
        assert app.main.state.sort_column == 1


async def test_refresh_keeps_cursor_on_the_same_row(
    make_app: MakeApp, demo_service: NetconService
) -> None:
    app = make_app(start="instances")
    async with app.run_test(size=(80, 24)) as pilot:
        await settle(pilot)
        await pilot.press("down", "down", "down")  # mail1
        assert app.main.table.current_row.item.name == "mail1"  # type: ignore[union-attr]
        demo_service.launch_instance("alpha", "aaa-first")  # sorts above mail1
        await pilot.press("ctrl+r")
        await settle(pilot)
        assert app.main.table.source.total == 8
        assert app.main.table.current_row.item.name == "mail1"  # type: ignore[union-attr]


async def test_pause_stops_timer_refresh(make_app: MakeApp, demo_service: NetconService) -> None:
    app = make_app(start="instances", refresh_interval=0.05)
    async with app.run_test(size=(80, 24)) as pilot:
        await settle(pilot)
        await pilot.press("p")
        demo_service.launch_instance("alpha", "late")
        await pilot.pause(0.3)
        await settle(pilot)
        assert app.main.table.source.total == 7
        await pilot.press("p")
        await pilot.pause(0.3)
        await settle(pilot)
        assert app.main.table.source.total == 8


async def test_help_lists_live_bindings(make_app: MakeApp) -> None:
    app = make_app(start="floating")
    async with app.run_test(size=(80, 24)) as pilot:
        await settle(pilot)
        sections = dict(app.main.help_sections())
        view = dict((d, k) for k, d in sections["Floating IPs"])
        assert view["Associate"] == "a" and view["Release"] == "D"
        await pilot.press("question_mark")
        await settle(pilot)
        assert isinstance(app.screen, HelpScreen)
        await pilot.press("escape")
        await settle(pilot)
        assert app.screen is app.main


async def test_theme_from_palette(make_app: MakeApp) -> None:
    app = make_app()
    async with app.run_test(size=(80, 24)) as pilot:
        await settle(pilot)
        await pilot.press("ctrl+p")
        await settle(pilot)
        await type_text(pilot, "Theme: ansi-dark")
        await settle(pilot)
        await pilot.press("enter")
        await settle(pilot)
        assert app.theme == "ansi-dark"


async def test_view_from_palette(make_app: MakeApp) -> None:
    app = make_app()
    async with app.run_test(size=(80, 24)) as pilot:
        await settle(pilot)
        await pilot.press("ctrl+p")
        await settle(pilot)
        await type_text(pilot, "View: Audit")
        await settle(pilot)
        await pilot.press("enter")
        await settle(pilot)
        assert app.main.state.resource.name == "audit"
        assert app.main.table.source.total > 0


async def test_stop_vpn_that_is_not_running(make_app: MakeApp) -> None:
    app = make_app(start="vpn")
    async with app.run_test(size=(80, 24), notifications=True) as pilot:
        await settle(pilot)
        await pilot.press("X")
        await settle(pilot)
        assert isinstance(app.screen, ConfirmDialog)
        assert app.screen.target.startswith("alpha")
        await pilot.press("right", "enter")
        await settle(pilot)
        assert app.screen is app.main
        assert any("alpha" in m for m in messages(app)), messages(app)


async def test_hosts_view_shows_this_hosts_pending_plan(make_app: MakeApp) -> None:
    # Planning only reads the host (links, addresses, nftables, dnsmasq files).
    app = make_app(start="hosts", host_plans=True)
    async with app.run_test(size=(80, 24)) as pilot:
        await settle(pilot)
        row = app.main.table.current_row
        assert row is not None and row.item.name == "nethost1"
        assert row.item.plan is not None or row.item.plan_error is not None
        detail = str(app.main.query_one("#detail").render())
        assert "pending plan" in detail


async def test_filter_with_markup_characters(make_app: MakeApp) -> None:
    # A filter is shown in the breadcrumbs; brackets must not be read as markup.
    app = make_app()
    async with app.run_test(size=(80, 24)) as pilot:
        await settle(pilot)
        await pilot.press("slash", *[_character_to_key(c) for c in "[b]x[/"])
        await settle(pilot)
        assert app.is_running
        assert app.main.table.source.total == 0
        assert "[b]x[/" in str(app.main.query_one("#crumbs").render())


async def test_reserve_and_unreserve_fixed_ip(
    make_app: MakeApp, demo_service: NetconService
) -> None:
    app = make_app()
    async with app.run_test(size=(80, 24)) as pilot:
        await settle(pilot)
        await pilot.press("enter")  # 10.0.0.0/24's fixed IPs
        await settle(pilot)
        await pilot.press("slash", *[_character_to_key(c) for c in "10.0.0.6"], "enter")
        await settle(pilot)
        row = app.main.table.current_row
        assert row is not None and row.item.address == "10.0.0.6" and row.item.state == "free"

        def state() -> str:
            page = demo_service.list_fixed_ips(network="10.0.0.0/24", search="10.0.0.6")
            return next(f.state for f in page.rows if f.address == "10.0.0.6")

        await pilot.press("r")
        await settle(pilot)
        assert state() == "reserved"
        assert app.main.table.current_row.item.state == "reserved"  # type: ignore[union-attr]
        await pilot.press("u")
        await settle(pilot)
        assert state() == "free"


async def test_add_and_remove_security_group_rule(
    make_app: MakeApp, demo_service: NetconService
) -> None:
    def rules() -> list[tuple[str, int, int]]:
        group = next(
            g for g in demo_service.list_security_groups("alpha") if g.name == "web"
        )
        return [(r.protocol, r.from_port, r.to_port) for r in group.rules]

    app = make_app(start="secgroups")
    async with app.run_test(size=(80, 24)) as pilot:
        await settle(pilot)
        await pilot.press("slash", *"web", "enter")
        await settle(pilot)
        await pilot.press("a")
        await settle(pilot)
        assert isinstance(app.screen, FormDialog)
        await pilot.press("tab", "8", "0", "8", "0", "tab", "8", "0", "8", "0", "enter")
        await settle(pilot)
        assert ("tcp", 8080, 8080) in rules()

        await pilot.press("x")
        await settle(pilot)
        assert isinstance(app.screen, PickDialog)
        await type_text(pilot, "8080")
        await pilot.press("enter")
        await settle(pilot)
        assert isinstance(app.screen, ConfirmDialog)
        assert "8080" in app.screen.target
        await pilot.press("right", "enter")
        await settle(pilot)
        assert ("tcp", 8080, 8080) not in rules()
        assert len(rules()) == 2


async def test_terminate_instance(make_app: MakeApp, demo_service: NetconService) -> None:
    app = make_app(start="instances")
    async with app.run_test(size=(80, 24)) as pilot:
        await settle(pilot)
        await pilot.press("down")  # app2
        await pilot.press("D")
        await settle(pilot)
        assert isinstance(app.screen, ConfirmDialog) and app.screen.target == "app2"
        await pilot.press("right", "enter")
        await settle(pilot)
        assert "app2" not in [i.name for i in demo_service.list_instances()]
        assert app.main.table.source.total == 6


async def test_create_and_delete_floating_range(
    make_app: MakeApp, demo_service: NetconService
) -> None:
    app = make_app(start="floating")
    async with app.run_test(size=(80, 24)) as pilot:
        await settle(pilot)
        await pilot.press("c")
        await settle(pilot)
        await pilot.press("tab")
        await type_text(pilot, "198.51.100.8-198.51.100.11")
        await pilot.press("tab")
        await type_text(pilot, "lab")
        await pilot.press("enter")
        await settle(pilot)
        pool = [f.address for f in demo_service.list_floating_ips() if f.pool == "lab"]
        assert pool == [f"198.51.100.{n}" for n in range(8, 12)]

        await pilot.press("X")
        await settle(pilot)
        form = app.screen
        assert isinstance(form, FormDialog)
        form.query_one("#field-ip_range").value = ""  # type: ignore[attr-defined]
        await type_text(pilot, "198.51.100.8-198.51.100.11")
        await pilot.press("enter")
        await settle(pilot)
        assert isinstance(app.screen, ConfirmDialog)
        assert app.screen.target == "198.51.100.8-198.51.100.11"
        assert "4 addresses" in app.screen.question
        await pilot.press("right", "enter")
        await settle(pilot)
        assert not [f for f in demo_service.list_floating_ips() if f.pool == "lab"]


async def test_create_project_then_group_then_delete_group(
    make_app: MakeApp, demo_service: NetconService
) -> None:
    app = make_app(start="projects")
    async with app.run_test(size=(80, 24)) as pilot:
        await settle(pilot)
        await pilot.press("n")
        await settle(pilot)
        await type_text(pilot, "delta")
        await pilot.press("enter")
        await settle(pilot)
        assert "delta" in [p.name for p in demo_service.list_projects()]
        assert "delta" in app.known_projects  # offered by the dialogs' completion

        await pilot.press("colon", *"sg", "enter")
        await settle(pilot)
        await pilot.press("n")
        await settle(pilot)
        form = app.screen
        assert isinstance(form, FormDialog)
        form.query_one("#field-project").value = "delta"  # type: ignore[attr-defined]
        await pilot.press("tab")
        await type_text(pilot, "dns")
        await pilot.press("enter")
        await settle(pilot)
        groups = {g.name for g in demo_service.list_security_groups("delta")}
        assert "dns" in groups

        await pilot.press("slash", *"dns", "enter")
        await settle(pilot)
        await pilot.press("D")
        await settle(pilot)
        assert isinstance(app.screen, ConfirmDialog) and app.screen.target == "dns"
        await pilot.press("right", "enter")
        await settle(pilot)
        assert "dns" not in {g.name for g in demo_service.list_security_groups("delta")}
