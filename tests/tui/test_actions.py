"""A day's changes from the console: security group memberships, describe and copy,
columns and sorting, marks, and the projects and fixed IPs views. Keys go in one burst,
as a terminal delivers fast typing."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from core.service import NetconService
from tests.tui.conftest import demo_plan, fixed_pending, settle
from tests.tui.test_flows import cells, field, messages, press_at_once
from tui.app import NetconApp
from tui.screens.describe import DescribeScreen
from tui.settings import ConsoleMemory
from tui.widgets.checklist import ChecklistDialog
from tui.widgets.dialogs import ConfirmDialog, FormDialog

MakeApp = Callable[..., NetconApp]


def groups_of(service: NetconService, instance: str) -> tuple[str, ...]:
    return service.get_instance(instance).instance.security_groups


# -- 4: joining and leaving security groups --------------------------------------------


async def test_g_on_an_instance_ticks_its_groups(
    make_app: MakeApp, demo_service: NetconService
) -> None:
    app = make_app(start="instances")
    async with app.run_test(size=(80, 24), notifications=True) as pilot:
        await settle(pilot)
        press_at_once(pilot, "slash", *"db1", "enter", "g")
        await settle(pilot)
        picker = app.screen
        assert isinstance(picker, ChecklistDialog)
        # alpha's groups, db1's own ticked.
        assert [(c.value, ticked) for c, ticked in picker.choices] == [
            ("default", True), ("web", False)
        ]
        # Tick web, untick default, apply: one change.
        press_at_once(pilot, "space", "down", "space", "enter")
        await settle(pilot)
        assert not isinstance(app.screen, ChecklistDialog)
        assert groups_of(demo_service, "db1") == ("web",)
        assert any("db1 joined web; left default" in m for m in messages(app)), messages(app)
        assert demo_service.list_audit(limit=1)[0].action == "instance.secgroup.set"
        # Esc leaves everything as it was.
        press_at_once(pilot, "g", "space", "escape")
        await settle(pilot)
        assert groups_of(demo_service, "db1") == ("web",)


async def test_g_typed_in_a_prompt_is_a_letter(make_app: MakeApp) -> None:
    # `g` is the table's first-row key too; in the instances view it opens the groups,
    # but never while the admin types a filter.
    app = make_app(start="instances")
    async with app.run_test(size=(80, 24)) as pilot:
        await settle(pilot)
        press_at_once(pilot, "slash", *"zzg", "backspace", "backspace", "backspace",
                      *"app", "enter", "j", "g")
        await settle(pilot)
        assert app.main.state.typed == "app"
        picker = app.screen
        assert isinstance(picker, ChecklistDialog)
        assert picker.title_text == "Security groups of app2 (beta)"


async def test_members_view_adds_takes_out_and_launches_into_the_group(
    make_app: MakeApp, demo_service: NetconService
) -> None:
    app = make_app(start="secgroups")
    async with app.run_test(size=(80, 24), notifications=True) as pilot:
        await settle(pilot)
        main = app.main
        press_at_once(pilot, "slash", *"web", "enter", "M")
        await settle(pilot)
        assert main.state.spec.name == "members"
        assert sorted(cells(app)) == ["web1", "web2"]
        # Both marked, taken out in one confirmation; the marks go with the action.
        press_at_once(pilot, "space", "space", "x")
        await settle(pilot)
        assert isinstance(app.screen, ConfirmDialog)
        press_at_once(pilot, "y")
        await settle(pilot)
        assert "web" not in groups_of(demo_service, "web1")
        assert "web" not in groups_of(demo_service, "web2")
        assert main.state.marks == set()
        assert cells(app) == []
        # `a` offers alpha's instances outside the group; tick two.
        press_at_once(pilot, "a")
        await settle(pilot)
        picker = app.screen
        assert isinstance(picker, ChecklistDialog)
        assert [c.value for c, _ in picker.choices] == ["db1", "web1", "web2"]
        press_at_once(pilot, "space", "down", "space", "enter")
        await settle(pilot)
        assert "web" in groups_of(demo_service, "db1")
        assert "web" in groups_of(demo_service, "web1")
        assert sorted(cells(app)) == ["db1", "web1"]
        # `n` launches with the group filled in.
        press_at_once(pilot, "n")
        await settle(pilot)
        assert isinstance(app.screen, FormDialog)
        assert field(app, "security_groups").value == "web"
        press_at_once(pilot, *"web3", "enter")
        await settle(pilot)
        assert groups_of(demo_service, "web3") == ("web",)
        assert "web3" in cells(app)


# -- 5: describe and copy -----------------------------------------------------------

DESCRIBE_KEYS = {
    "projects": ("colon", *"projects", "enter"),
    "networks": (),
    "fixed": ("enter",),
    "floating": ("colon", *"fip", "enter"),
    "vpn": ("colon", *"vpn", "enter"),
    "instances": ("colon", *"instances", "enter"),
    "secgroups": ("colon", *"secgroups", "enter"),
    "hosts": ("colon", *"hosts", "enter"),
    "audit": ("colon", *"audit", "enter"),
}


@pytest.mark.parametrize("view", list(DESCRIBE_KEYS))
async def test_d_describes_any_row_and_y_copies_it(make_app: MakeApp, view: str) -> None:
    app = make_app()
    async with app.run_test(size=(80, 24)) as pilot:
        await settle(pilot)
        press_at_once(pilot, *DESCRIBE_KEYS[view], "y", "d")
        await settle(pilot)
        copied = app.clipboard
        row = app.main.table.current_row
        assert row is not None and copied
        # The row's name or address (a group's with its project).
        assert all(part in row.cells for part in copied.split("/", 1)) or copied in row.cells
        screen = app.screen
        assert isinstance(screen, DescribeScreen)
        assert "fields" in screen.plain
        press_at_once(pilot, "y")
        await settle(pilot)
        assert app.clipboard == screen.plain
        press_at_once(pilot, "escape")
        await settle(pilot)
        assert app.screen is app.main


async def test_describe_a_network_and_a_floating_ip(make_app: MakeApp) -> None:
    app = make_app(pending_source=fixed_pending(demo_plan()))
    async with app.run_test(size=(80, 24)) as pilot:
        await settle(pilot)
        press_at_once(pilot, "slash", *"10.0.0.0", "enter", "d")
        await settle(pilot)
        screen = app.screen
        assert isinstance(screen, DescribeScreen)
        text = screen.plain
        for part in ("bridge", "br100", "segment", "DHCP range", "10.0.0.3 – 10.0.0.254",
                     "MTU", "DNS", "project", "alpha", "instances", "3: db1, web1, web2",
                     "pending on nethost1", "create bridge br100"):
            assert part in text, (part, text)
        press_at_once(pilot, "escape")
        await settle(pilot)
        press_at_once(pilot, "colon", *"fip", "enter", "slash", *"203.0.113.1", "enter", "d")
        await settle(pilot)
        text = app.screen.plain  # type: ignore[attr-defined]
        for part in ("pool", "project", "alpha", "instance", "web1 at 10.0.0.3", "NAT on",
                     "pending on nethost1", "add NAT element 203.0.113.1"):
            assert part in text, (part, text)


# -- 7: every column, sort by a column's letter ---------------------------------------


async def test_w_shows_every_column_and_is_remembered(
    make_app: MakeApp, tmp_path: Any
) -> None:
    memory = ConsoleMemory(tmp_path / "state")
    app = make_app(start="instances", memory=memory)
    async with app.run_test(size=(80, 24)) as pilot:
        await settle(pilot)
        table = app.main.table
        full = [
            (i, max(c.width, *(len(row.cells[i]) for row in table.source.rows)))
            for i, c in enumerate(table.columns)
        ]
        assert table.layout_columns != full  # some narrowed or left out to fit
        press_at_once(pilot, "w", "l")
        await settle(pilot)
        assert table.layout_columns == full
        assert table.scroll_x > 0
        assert not app.main.query_one("#detail-pane").display
    assert memory.wide() == ["instances"]
    again = make_app(start="instances", memory=memory)
    async with again.run_test(size=(80, 24)) as pilot:
        await settle(pilot)
        assert again.main.table.wide


@pytest.mark.parametrize("size", [(80, 24), (120, 40)])
async def test_a_vxlan_segment_reads_whole_in_the_vlan_column(
    make_app: MakeApp, demo_service: NetconService, size: tuple[int, int]
) -> None:
    """A VXLAN network's id is shown by its link's name on the host, which fits the
    VLAN column at 80 and 120 columns beside the 802.1Q ids."""
    demo_service.modify_network("10.0.2.0/24", segmentation="vxlan")
    app = make_app(start="networks")
    async with app.run_test(size=size) as pilot:
        await settle(pilot)
        vlan = [c.key for c in app.main.table.columns].index("vlan")
        segments = dict(zip(cells(app), cells(app, vlan), strict=True))
        assert segments["10.0.2.0/24"] == "vx102"
        assert segments["10.0.1.0/24"] == "101"
        shown = "".join(
            strip.text for strip in (app.main.table.render_line(y) for y in range(1, 8))
        )
        assert " vx102 " in shown


async def test_w_shows_a_cell_wider_than_its_column_whole(
    make_app: MakeApp, demo_service: NetconService
) -> None:
    """A VXLAN id beyond 802.1Q's ("vx5000000") is wider than the VLAN column's usual
    width: at 80 columns it is cut, and `w` shows it whole."""
    demo_service.create_networks(
        "10.0.200.0/24", 1, 256, 5000000, 2000, segmentation="vxlan", label="wide"
    )
    app = make_app(start="networks")
    async with app.run_test(size=(80, 24)) as pilot:
        await settle(pilot)
        table = app.main.table
        vlan = [c.key for c in table.columns].index("vlan")
        assert dict(table.layout_columns)[vlan] < len("vx5000000")
        press_at_once(pilot, "w")
        await settle(pilot)
        assert dict(table.layout_columns)[vlan] == len("vx5000000")
        assert "vx5000000" in "".join(
            strip.text for strip in (table.render_line(y) for y in range(1, 9))
        )


async def test_c_chooses_the_columns_a_view_shows(make_app: MakeApp, tmp_path: Any) -> None:
    memory = ConsoleMemory(tmp_path / "state")
    app = make_app(start="instances", memory=memory)
    async with app.run_test(size=(80, 24)) as pilot:
        await settle(pilot)
        press_at_once(pilot, "C")
        await settle(pilot)
        picker = app.screen
        assert isinstance(picker, ChecklistDialog)
        assert [c.value for c, ticked in picker.choices if ticked] == [
            "name", "project", "addresses", "floating", "host", "groups"
        ]
        # Untick Floating and Host.
        press_at_once(pilot, "down", "down", "down", "space", "down", "space", "enter")
        await settle(pilot)
        table = app.main.table
        shown = [table.columns[i].key for i, _ in table.layout_columns]
        assert shown == ["name", "project", "addresses", "groups"]
        # Room for them now: Groups at its full width.
        assert dict(table.layout_columns)[5] == 16
    assert memory.hidden_columns() == {"instances": ["floating", "host"]}
    again = make_app(start="instances", memory=memory)
    async with again.run_test(size=(80, 24)) as pilot:
        await settle(pilot)
        table = again.main.table
        assert [table.columns[i].key for i, _ in table.layout_columns] == [
            "name", "project", "addresses", "groups"
        ]
        press_at_once(pilot, "w")  # every column all the same
        await settle(pilot)
        assert len(table.layout_columns) == 6


async def test_shift_letter_sorts_by_that_column(make_app: MakeApp) -> None:
    app = make_app(start="instances")
    async with app.run_test(size=(120, 40)) as pilot:
        await settle(pilot)
        main = app.main
        # P: Project, then P again: the other way; s keeps cycling as before.
        press_at_once(pilot, "P")
        await settle(pilot)
        assert main.state.sort_column == 1 and not main.state.sort_descending
        assert cells(app, 1) == sorted(cells(app, 1))
        press_at_once(pilot, "P")
        await settle(pilot)
        assert main.state.sort_descending
        assert cells(app, 1) == sorted(cells(app, 1), reverse=True)
        press_at_once(pilot, "N", "S")
        await settle(pilot)
        assert main.state.sort_column == 0 and main.state.sort_descending
        assert cells(app) == sorted(cells(app), reverse=True)



async def test_a_sort_key_is_rebound_by_its_id_and_follows_the_view(
    make_app: MakeApp,
) -> None:
    from tui.settings import ConsoleSettings

    settings = ConsoleSettings(keys={"sort.project": "O"})
    app = make_app(start="instances", settings=settings)
    async with app.run_test(size=(120, 40)) as pilot:
        await settle(pilot)
        main = app.main
        press_at_once(pilot, "P", "O")  # P is no sort here now; O sorts by Project
        await settle(pilot)
        assert main.state.sort_column == 1 and not main.state.sort_descending
        # Another view's columns get their letters once it is on screen, keys typed
        # behind the switch included.
        press_at_once(pilot, "colon", *"networks", "enter", "V")
        await settle(pilot)
        assert main.state.spec.name == "networks"
        vlan = [column.key for column in main.state.spec.columns].index("vlan")
        assert main.state.sort_column == vlan and not main.state.sort_descending


# -- 15: marks --------------------------------------------------------------------------


async def test_range_marks_and_marks_cleared_after_the_bulk_action(
    make_app: MakeApp, demo_service: NetconService
) -> None:
    app = make_app(start="instances")
    async with app.run_test(size=(80, 24), notifications=True) as pilot:
        await settle(pilot)
        main = app.main
        names = cells(app)
        # Mark the first, go down two, mark the range: three marked.
        press_at_once(pilot, "space", "j", "shift+space")
        await settle(pilot)
        assert {row for row in main.state.marks} == {
            main.table.source.row(i).key for i in range(3)  # type: ignore[union-attr]
        }
        press_at_once(pilot, "D", "y")
        await settle(pilot)
        assert main.state.marks == set()
        left = {i.name for i in demo_service.list_instances()}
        assert left == set(names[3:])


# -- 17: projects and fixed IPs ---------------------------------------------------------


async def test_enter_on_a_project_opens_its_instances_and_n_its_networks(
    make_app: MakeApp,
) -> None:
    app = make_app(start="projects")
    async with app.run_test(size=(80, 24)) as pilot:
        await settle(pilot)
        main = app.main
        press_at_once(pilot, "enter")
        await settle(pilot)
        assert main.state.spec.name == "instances"
        assert main.state.scope == {"project": "alpha"}
        assert sorted(cells(app)) == ["db1", "web1", "web2"]
        press_at_once(pilot, "escape", "N")
        await settle(pilot)
        assert main.state.spec.name == "networks"
        assert cells(app) == ["10.0.0.0/24"]


async def test_fixed_has_a_project_column_that_the_filter_finds(make_app: MakeApp) -> None:
    app = make_app(start="fixed")
    async with app.run_test(size=(120, 40)) as pilot:
        await settle(pilot)
        labels = [c.label for c in app.main.table.columns]
        assert "Project" in labels
        press_at_once(pilot, "slash", *"alpha", "enter")
        await settle(pilot)
        column = labels.index("Project")
        source = app.main.table.source
        # alpha's /24; the rows of its first window are all alpha's.
        assert source.total == 256
        loaded = [source.row(i) for i in range(100)]
        assert {row.cells[column] for row in loaded if row is not None} == {"alpha"}


# -- 14: the audit log follows its newest event; unpausing refreshes -------------------


async def test_audit_follows_the_newest_event_unless_the_cursor_moved(
    make_app: MakeApp, demo_service: NetconService
) -> None:
    app = make_app(start="audit")
    async with app.run_test(size=(80, 24)) as pilot:
        await settle(pilot)
        main = app.main
        demo_service.create_project("delta")
        press_at_once(pilot, "ctrl+r")
        await settle(pilot)
        assert main.table.cursor == 0
        assert main.table.current_row.item.target == "delta"  # type: ignore[union-attr]
        press_at_once(pilot, "j")
        await settle(pilot)
        kept = main.table.current_row.key  # type: ignore[union-attr]
        demo_service.create_project("epsilon")
        press_at_once(pilot, "ctrl+r")
        await settle(pilot)
        assert main.table.current_row.key == kept  # type: ignore[union-attr]
        # Paused, a change waits; unpausing shows it at once.
        press_at_once(pilot, "g", "p")
        await settle(pilot)
        demo_service.create_project("zeta")
        press_at_once(pilot, "p")
        await settle(pilot)
        assert main.table.current_row.item.target == "zeta"  # type: ignore[union-attr]


# -- 13: the screen at 80x24 ------------------------------------------------------------


@pytest.mark.parametrize(("size", "shown"), [((80, 24), True), ((120, 40), True)])
async def test_instances_groups_column_is_legible(
    make_app: MakeApp, size: tuple[int, int], shown: bool
) -> None:
    app = make_app(start="instances")
    async with app.run_test(size=size) as pilot:
        await settle(pilot)
        table = app.main.table
        widths = dict(table.layout_columns)
        groups = [c.key for c in table.columns].index("groups")
        assert widths.get(groups, 0) >= len("default, web")


@pytest.mark.parametrize("read_only", [False, True])
async def test_header_keeps_pending_and_clock_at_80_columns(
    make_app: MakeApp, read_only: bool
) -> None:
    from tui.settings import ConsoleSettings, ContextStyle

    settings = ConsoleSettings(
        contexts=(ContextStyle("prod", "sqlite:///*", "PRODUCTION", "darkred"),)
    )
    app = make_app(settings=settings, read_only=read_only,
                   pending_source=fixed_pending(demo_plan()))
    async with app.run_test(size=(80, 24)) as pilot:
        await settle(pilot)
        header = app.main.query_one("#header")
        text = str(header.render())
        # What the demo's host owes, as `host list` counts it: 10 changes.
        assert "nethost1 ~10 pending" in text and "12:00:00" in text, text
        assert "…" not in text[-12:]


async def test_the_command_hint_fits_80_columns(make_app: MakeApp) -> None:
    app = make_app()
    async with app.run_test(size=(80, 24)) as pilot:
        await settle(pilot)
        press_at_once(pilot, "colon")
        await settle(pilot)
        prompt = app.main.query_one("#command")
        assert len(prompt.placeholder) <= prompt.content_region.width  # type: ignore[attr-defined]
        assert prompt.placeholder.endswith("Tab")  # type: ignore[attr-defined]


async def test_detail_pane_uses_a_200_column_screen(make_app: MakeApp) -> None:
    app = make_app()
    async with app.run_test(size=(200, 50)) as pilot:
        await settle(pilot)
        assert app.main.query_one("#detail-pane").size.width > 60


# -- 16: form errors, grey text, ports as the CLI takes them --------------------------


async def test_refusals_show_under_their_field_and_go_when_it_is_edited(
    make_app: MakeApp,
) -> None:
    app = make_app(start="projects")
    async with app.run_test(size=(80, 24)) as pilot:
        await settle(pilot)
        press_at_once(pilot, "n")
        await settle(pilot)
        press_at_once(pilot, *"alpha", "enter")
        await settle(pilot)
        form = app.screen
        assert isinstance(form, FormDialog)
        error = form.query_one("#error-name")
        assert "already exists" in str(error.render()) and error.display
        assert not form.query_one("#form-refusal").display
        press_at_once(pilot, "2")
        await settle(pilot)
        assert not form.query_one("#error-name").display
        press_at_once(pilot, "escape")
        await settle(pilot)
        # An unknown group at launch (in alpha's instances): under Security groups.
        press_at_once(pilot, "enter")
        await settle(pilot)
        press_at_once(pilot, "n")
        await settle(pilot)
        press_at_once(pilot, *"zz1")
        await settle(pilot)
        field(app, "security_groups").focus()
        press_at_once(pilot, *"nope", "enter")
        await settle(pilot)
        form = app.screen
        assert isinstance(form, FormDialog)
        error = form.query_one("#error-security_groups")
        assert "no security group named 'nope'" in str(error.render()) and error.display
        assert field(app, "security_groups").placeholder == "default: default · e.g. default, web"


async def test_add_rule_takes_one_port_as_the_cli_does(
    make_app: MakeApp, demo_service: NetconService
) -> None:
    app = make_app(start="secgroups")
    async with app.run_test(size=(80, 24)) as pilot:
        await settle(pilot)
        press_at_once(pilot, "slash", *"web", "enter", "a")
        await settle(pilot)
        assert isinstance(app.screen, FormDialog)
        assert field(app, "to_port").placeholder == "default: the from port"
        field(app, "from_port").focus()
        press_at_once(pilot, *"8080", "enter")
        await settle(pilot)
        assert not isinstance(app.screen, FormDialog)
        web = next(g for g in demo_service.list_security_groups("alpha") if g.name == "web")
        assert any((r.from_port, r.to_port) == (8080, 8080) for r in web.rules)


# -- 6: contexts -------------------------------------------------------------------------


async def test_ctx_switches_database_and_the_header_follows(
    make_app: MakeApp, demo_service: NetconService
) -> None:
    from core.config import load_settings
    from tui.settings import ConsoleSettings, ContextStyle

    lab = NetconService("sqlite:///lab.db", load_settings(paths=[], host="nethost1"))
    lab.create_project("lab1")
    lab.db.dispose()
    settings = ConsoleSettings(contexts=(
        ContextStyle("prod", "postgresql://*@db.example/*", "PROD", "darkred"),
        ContextStyle("lab", "sqlite:///lab.db", "LAB", "darkgreen", read_only=True),
        ContextStyle("demo", "sqlite:///demo.db", "DEMO", "darkblue"),
    ))
    app = make_app(start="projects", settings=settings)
    async with app.run_test(size=(80, 24)) as pilot:
        await settle(pilot)
        main = app.main
        assert "DEMO" in str(main.query_one("#header").render())
        press_at_once(pilot, "colon", *"ctx lab", "enter")
        await settle(pilot)
        assert cells(app) == ["lab1"]
        header = main.query_one("#header")
        assert "LAB" in str(header.render()) and "read-only" in str(header.render())
        assert header.styles.background.hex.lower() == "#006400"  # darkgreen
        assert main._action("project.create") is None  # the lab context is read-only
        # `:ctx` alone offers the contexts that name one database (not a glob).
        press_at_once(pilot, "colon", *"ctx", "enter")
        await settle(pilot)
        picker = app.screen
        from tui.widgets.dialogs import PickDialog

        assert isinstance(picker, PickDialog)
        assert [c.value for c in picker.choices] == ["lab", "demo"]
        press_at_once(pilot, *"demo", "enter")
        await settle(pilot)
        assert "alpha" in cells(app)
        assert "DEMO" in str(main.query_one("#header").render())
        assert not main.context.read_only
        # A context nobody named is refused in a line; the console stays.
        press_at_once(pilot, "colon", *"ctx nope", "enter")
        await settle(pilot)
        assert "alpha" in cells(app)


def test_grey_text_is_a_default_only_where_empty_is_allowed() -> None:
    """A default in grey is what an empty field takes, so only an optional field has
    one; anything else in grey is an example (``e.g.``)."""
    from core.config import load_settings
    from tui.views import VIEWS
    from tui.views.base import Known, Situation, ViewAction
    from tui.views.secgroups import rule_form

    situation = Situation(
        load_settings(paths=[], host="nethost1"), {"project": "alpha", "group": "web"},
        Known(("alpha",), ("public",), ("nethost1",)), "alpha",
    )
    forms = [rule_form("alpha", "web")] + [
        action.form(situation)
        for view in VIEWS.values()
        for action in view.actions
        if isinstance(action, ViewAction) and action.form is not None
    ]
    assert len(forms) > 6
    for form in forms:
        for one in form.fields:
            if one.placeholder:
                assert one.optional, (form.title, one.name)
                assert one.grey.startswith("default: ")
            elif one.example:
                assert one.grey == f"e.g. {one.example}"


def test_a_networks_detail_names_its_segment_in_words(demo_service: NetconService) -> None:
    from tui.views.networks import NETWORKS

    demo_service.modify_network("10.0.2.0/24", segmentation="vxlan")
    networks = {n.cidr: n for n in demo_service.list_networks()}
    assert NETWORKS.detail is not None

    def segment(cidr: str) -> str:
        said = NETWORKS.detail(networks[cidr]).plain.splitlines()
        return next(line for line in said if line.startswith("segment")).split(None, 1)[1]

    assert segment("10.0.1.0/24") == "vlan 101"
    assert segment("10.0.2.0/24") == "vxlan 102"
    # FlatDHCP and Flat networks have no segment of their own: not "none -".
    assert segment("10.10.0.0/24") == "none"
    assert segment("10.20.0.0/24") == "none"
