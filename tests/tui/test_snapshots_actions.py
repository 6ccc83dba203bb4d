"""Snapshots of a day's changes in the console, at 80x24 and 120x40: describe, the
groups checklist, a group's members, every column, range marks, a refusal under its
field, the header with a context, read-only and what the host owes. Keys go in one
burst after the first rows are up."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

import pytest
from textual.pilot import Pilot

from tests.tui.conftest import demo_plan, fixed_pending, settle
from tests.tui.test_flows import press_at_once
from tui.settings import ConsoleSettings, ContextStyle

Snap = Callable[..., bool]
SIZES = {"80x24": (80, 24), "120x40": (120, 40)}


def burst(*groups: tuple[str, ...]) -> Callable[[Pilot[Any]], Awaitable[None]]:
    """A run_before that sends each group of keys in one burst, settling between groups
    (a dialog opens between them)."""

    async def run(pilot: Pilot[Any]) -> None:
        await settle(pilot)
        for keys in groups:
            press_at_once(pilot, *keys)
            await settle(pilot)

    return run


CASES: dict[str, tuple[str, tuple[tuple[str, ...], ...]]] = {
    "describe_network": ("networks", (("d",),)),
    "describe_floating": ("floating", (("d",),)),
    "groups_checklist": ("instances", (("slash", *"db1", "enter", "g"), ("down",))),
    "members": ("secgroups", (("slash", *"web", "enter", "M"), ("space",))),
    "add_members": ("secgroups", (("slash", *"web", "enter", "M"), ("a",))),
    "every_column": ("instances", (("w",),)),
    "range_marks": ("instances", (("space", "j", "j", "shift+space"),)),
    "refused_under_field": ("projects", (("n",), (*"alpha", "enter"))),
    "add_rule_grey_text": ("secgroups", (("a",),)),
    "project_instances": ("projects", (("enter",),)),
    "choose_columns": ("instances", (("C",),)),
    "columns_chosen": (
        "instances", (("C",), ("down", "down", "down", "space", "down", "space", "enter"))
    ),
    "sorted_by_project": ("instances", (("P",),)),
}


@pytest.mark.parametrize("size", list(SIZES))
@pytest.mark.parametrize("case", list(CASES))
def test_action(case: str, size: str, snap_compare: Snap, make_app: Callable[..., Any]) -> None:
    start, groups = CASES[case]
    app = make_app(start=start, pending_source=fixed_pending(demo_plan()))
    assert snap_compare(app, run_before=burst(*groups), terminal_size=SIZES[size])


@pytest.mark.parametrize("size", list(SIZES))
def test_header_with_context_read_only_and_pending(
    size: str, snap_compare: Snap, make_app: Callable[..., Any]
) -> None:
    settings = ConsoleSettings(
        contexts=(ContextStyle("prod", "sqlite:///*", "PRODUCTION", "darkred"),)
    )
    app = make_app(settings=settings, read_only=True, pending_source=fixed_pending(demo_plan()))
    assert snap_compare(app, run_before=burst(), terminal_size=SIZES[size])


@pytest.mark.parametrize("size", list(SIZES))
def test_ctx_switched(
    size: str, snap_compare: Snap, make_app: Callable[..., Any], demo_service: Any
) -> None:
    from core.config import load_settings
    from core.service import NetconService
    from tests.tui.conftest import FIXED_TIME

    lab = NetconService("sqlite:///lab.db", load_settings(paths=[], host="nethost1"),
                        clock=lambda: FIXED_TIME)
    lab.create_project("lab1")
    lab.db.dispose()
    settings = ConsoleSettings(contexts=(
        ContextStyle("lab", "sqlite:///lab.db", "LAB", "darkgreen", read_only=True),
        ContextStyle("demo", "sqlite:///demo.db", "DEMO", "darkblue"),
    ))
    app = make_app(start="projects", settings=settings)
    assert snap_compare(app, run_before=burst(("colon", *"ctx lab", "enter")),
                        terminal_size=SIZES[size])


@pytest.mark.parametrize("size", list(SIZES))
def test_audit_follows_the_newest_event(
    size: str, snap_compare: Snap, make_app: Callable[..., Any], demo_service: Any
) -> None:
    from tests.tui.conftest import FIXED_TIME

    demo_service.clock = lambda: FIXED_TIME
    app = make_app(start="audit")

    async def run_before(pilot: Pilot[Any]) -> None:
        await settle(pilot)
        demo_service.create_project("delta")
        press_at_once(pilot, "ctrl+r")
        await settle(pilot)

    assert snap_compare(app, run_before=run_before, terminal_size=SIZES[size])
