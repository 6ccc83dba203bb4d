"""The console's own settings: [console], [keys] and [contexts] of netcon.toml, and what
it remembers between runs (the `:` history, the theme)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from core.config import load_settings
from core.errors import InvalidInput
from tests.tui.conftest import settle
from tui.app import NetconApp
from tui.settings import ConsoleMemory, ConsoleSettings, ContextStyle, load_console_settings
from tui.widgets.dialogs import FormDialog

MakeApp = Callable[..., NetconApp]

TOML = """
fixed_range = "10.0.0.0/8"

[console]
theme = "nord"
refresh = 2

[keys]
"floating.release" = "ctrl+d"
"console.quit" = "Q"

[contexts.production]
database = "postgresql://*@db.prod.example/*"
label = "PRODUCTION"
color = "darkred"
read_only = true
"""


def test_the_core_skips_the_console_tables_and_the_console_reads_them(tmp_path: Path) -> None:
    path = tmp_path / "netcon.toml"
    path.write_text(TOML)
    assert load_settings(paths=[path]).fixed_range == "10.0.0.0/8"
    settings = load_console_settings([path])
    assert (settings.theme, settings.refresh) == ("nord", 2.0)
    assert settings.keys == {"floating.release": "ctrl+d", "console.quit": "Q"}
    context = settings.context_for("postgresql://netcon:***@db.prod.example/netcon")
    assert context is not None and (context.label, context.read_only) == ("PRODUCTION", True)
    assert settings.context_for("sqlite:///demo.db") is None


@pytest.mark.parametrize(
    ("text", "field"),
    [
        ("[console]\ncolour = 1\n", "console.colour"),
        ("[console]\nrefresh = -1\n", "console.refresh"),
        ("[keys]\n\"floating.release\" = 3\n", "keys.floating.release"),
        ("[contexts.lab]\nlabel = \"LAB\"\n", "contexts.lab.database"),
        ("[contexts.lab]\ndatabase = \"x\"\nshade = \"red\"\n", "contexts.lab.shade"),
    ],
)
def test_mistakes_are_refused_in_one_line(tmp_path: Path, text: str, field: str) -> None:
    path = tmp_path / "netcon.toml"
    path.write_text(text)
    with pytest.raises(InvalidInput) as refused:
        load_console_settings([path])
    assert f"{path}: {field}" in refused.value.message
    assert "\n" not in refused.value.message


def test_memory_keeps_history_and_theme(tmp_path: Path) -> None:
    memory = ConsoleMemory(tmp_path / "state")
    assert memory.history() == [] and memory.theme() is None
    memory.remember("floating")
    memory.remember("networks")
    assert memory.remember("floating") == ["networks", "floating"]
    memory.keep_theme("nord")
    again = ConsoleMemory(tmp_path / "state")
    assert again.history() == ["networks", "floating"] and again.theme() == "nord"


async def test_keys_rebound_by_id(make_app: MakeApp, demo_service: Any) -> None:
    settings = ConsoleSettings(keys={"network.create": "N", "console.quit": "Q"})
    app = make_app(settings=settings)
    async with app.run_test(size=(80, 24)) as pilot:
        await settle(pilot)
        keys = str(app.main.query_one("#keys").render())
        assert "N New network" in keys and "Q Quit" in keys
        await pilot.press("n")  # the old key does nothing now
        await settle(pilot)
        assert app.screen is app.main
        await pilot.press("N")
        await settle(pilot)
        assert isinstance(app.screen, FormDialog)
        await pilot.press("escape")
        await settle(pilot)
        help_keys = {e.binding_id: e.key for _, es in app.main.help_sections() for e in es}
        assert help_keys["network.create"] == "N" and help_keys["console.quit"] == "Q"
        await pilot.press("q")  # rebound: no longer quits
        await settle(pilot)
        assert app.is_running
        await pilot.press("Q")
        await pilot.pause()
        assert not app.is_running


async def test_unknown_ids_and_clashes_are_reported(make_app: MakeApp) -> None:
    settings = ConsoleSettings(keys={"floating.teleport": "t", "floating.release": "a"})
    app = make_app(start="floating", settings=settings)
    async with app.run_test(size=(80, 24), notifications=True) as pilot:
        await settle(pilot)
        problems = app.main.key_problems
        assert "keys.floating.teleport is not a binding id (`?` lists them)" in problems
        assert "a is bound to floating.associate and floating.release; floating.associate wins" in (
            problems
        )


async def test_theme_is_kept_for_the_next_start(make_app: MakeApp, tmp_path: Path) -> None:
    memory = ConsoleMemory(tmp_path / "state")
    app = make_app(memory=memory)
    async with app.run_test(size=(80, 24)) as pilot:
        await settle(pilot)
        app.theme = "nord"
        await settle(pilot)
    assert memory.theme() == "nord"
    again = make_app(memory=memory, settings=ConsoleSettings(theme="gruvbox"))
    assert again.theme == "nord"  # the one picked wins over the configured default


async def test_read_only_context(make_app: MakeApp) -> None:
    settings = ConsoleSettings(
        contexts=(ContextStyle("prod", "sqlite:///demo.db", "PROD", "darkred", read_only=True),)
    )
    app = make_app(settings=settings)
    async with app.run_test(size=(80, 24)) as pilot:
        await settle(pilot)
        header = str(app.main.query_one("#header").render())
        assert "PROD" in header and "read-only" in header
        assert app.read_only


@pytest.mark.parametrize("auto_apply", [True, False])
def test_a_database_switched_to_applies_changes_as_one_opened_by_a_command(
    tmp_path: Path, auto_apply: bool
) -> None:
    """`:ctx lab` opens lab's database as `netcon --db LAB` does: with auto_apply, the
    changes made there are applied to this host at once, not left pending."""
    from core.service.hostsync import HostSync
    from tests.support import make_service
    from tui.app import open_database

    made = make_service(tmp_path)  # the database a context names exists already
    made.db.dispose()
    settings = load_settings(paths=[], host="nethost1", auto_apply=auto_apply)
    service = open_database(settings, f"sqlite:///{tmp_path / 'netcon.db'}")
    appliers = [
        listener
        for listener in service.listeners  # type: ignore[attr-defined]
        if isinstance(getattr(listener, "__self__", None), HostSync)
    ]
    assert len(appliers) == (1 if auto_apply else 0)


def test_the_console_on_a_namespace_auto_applies_there(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """`netcon --netns rehearsal` with auto_apply: the console's plan is the rehearsal's,
    and so is where its changes are applied, never the host the console runs on."""
    import argparse
    import os
    import subprocess

    from core.cli.context import Context
    from core.cli.run import _console_service
    from core.service.hostsync import HostSync
    from tests.support import make_service

    config = tmp_path / "config" / "netcon"
    config.mkdir(parents=True)
    (config / "netcon.toml").write_text(
        f'auto_apply = true\nhost = "nethost1"\nstate_dir = "{tmp_path / "state"}"\n'
    )
    monkeypatch.setenv("XDG_CONFIG_HOME", str(config.parent))
    make_service(tmp_path).db.dispose()  # the database the console opens
    rehearsal = f"nc-console-{os.getpid()}"
    subprocess.run(["ip", "netns", "add", rehearsal], check=True)
    args = argparse.Namespace(
        command=None,
        db=f"sqlite:///{tmp_path / 'netcon.db'}",
        read_only=False,
        json=False,
        lock_timeout=None,
        console_netns=rehearsal,
    )
    try:
        service = _console_service(Context(args))
        assert service.settings.netns == rehearsal
        (sync,) = [
            listener.__self__
            for listener in service.listeners
            if isinstance(getattr(listener, "__self__", None), HostSync)
        ]
        assert sync.layer.netns == rehearsal
        sync.close()
        service.db.dispose()
    finally:
        subprocess.run(["ip", "netns", "del", rehearsal], check=True)
