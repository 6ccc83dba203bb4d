"""The console's terminal: raw bytes as a terminal sends them, through the parser the
console's driver reads keys with (tui.terminal), and `netcon` with no terminal."""

from __future__ import annotations

import asyncio
import os
import pty
import shutil
import subprocess
import sys
import sysconfig
import threading
import time
import tty
from collections.abc import Callable
from pathlib import Path

import pytest
from textual import events
from textual.message import Message

from core.service import NetconService
from tests.tui.conftest import settle
from tui.app import NetconApp
from tui.needs_terminal import NEEDS_TERMINAL
from tui.terminal import KeyBurstParser, TerminalDriver

MakeApp = Callable[..., NetconApp]


def parsed(data: str) -> list[Message]:
    """What the console's parser makes of ``data`` read in one go, and of the silence
    after it (an ESC with nothing after it is settled by the escape delay)."""
    parser = KeyBurstParser()
    messages = list(parser.feed(data))
    time.sleep(0.2)  # past ESCDELAY (100 ms unless set)
    messages += parser.tick()
    return messages


def names(messages: list[Message]) -> list[str]:
    return [
        message.key if isinstance(message, events.Key) else type(message).__name__
        for message in messages
    ]


@pytest.mark.parametrize(("data", "keys"), [
    # Escape typed ahead of printable keys: Escape, then the keys.
    ("\x1b:secgroups\r", ["escape", "colon", *"secgroups", "enter"]),
    ("\x1bn", ["escape", "n"]),
    ("\x1b/web", ["escape", "slash", *"web"]),
    ("\x1bO", ["escape", "O"]),  # ESC O is SS3 only with the key after it
    ("\x1bOi", ["escape", "O", "i"]),
    ("\x1b\x1b:", ["escape", "escape", "colon"]),
    ("ab\x1bq", ["a", "b", "escape", "q"]),
    # What terminals send after ESC still parses.
    ("\x1b", ["escape"]),
    ("\x1b[A\x1b[B\x1b[C\x1b[D", ["up", "down", "right", "left"]),
    ("\x1bOP\x1b[15~", ["f1", "f5"]),
    ("\x1bOA", ["up"]),  # cursor keys in application mode
    ("\x1b[1;3D", ["alt+left"]),
    ("\x1b[1;5C", ["ctrl+right"]),
    ("\x1b[27u", ["escape"]),  # kitty keyboard protocol
    ("\x1b\x7f", ["ctrl+w"]),  # Alt+Backspace: delete a word
    ("\x1b[<0;3;4M", ["MouseDown"]),
    ("\x1b[I\x1b[O", ["AppFocus", "AppBlur"]),
])
def test_raw_bytes_parse_to_keys_in_the_order_typed(data: str, keys: list[str]) -> None:
    assert names(parsed(data)) == keys


def test_a_paste_is_kept_as_pasted() -> None:
    messages = parsed("\x1b[200~:secgroups\r10.0.0.0/24\x1b[201~\x1bq")
    assert names(messages) == ["Paste", "escape", "q"]
    paste = messages[0]
    assert isinstance(paste, events.Paste) and paste.text == ":secgroups\r10.0.0.0/24"


def test_escape_at_the_end_of_one_read_and_keys_in_the_next() -> None:
    parser = KeyBurstParser()
    messages = list(parser.feed("\x1b"))
    messages += parser.feed(":q")
    assert names(messages) == ["escape", "colon", "q"]


class RecordingDriver(TerminalDriver):
    """The console's terminal driver, keeping what it reads instead of posting it."""

    def __init__(self, app: NetconApp) -> None:
        super().__init__(app)
        self.received: list[Message] = []

    def process_message(self, message: Message) -> None:
        self.received.append(message)


async def test_the_console_reads_its_terminal_with_this_parser(make_app: MakeApp) -> None:
    app = make_app()
    # Where Textual would pick its Linux terminal driver, the console picks its own.
    assert app.driver_class is TerminalDriver
    driver = RecordingDriver(app)
    primary, secondary = pty.openpty()
    tty.setraw(secondary)  # as Textual sets the terminal: every byte as it is typed
    driver.fileno = secondary
    reader = threading.Thread(target=driver.run_input_thread)
    reader.start()
    try:
        os.write(primary, b"\x1b:secgroups\r\x1b[A")
        deadline = time.monotonic() + 10
        while len(driver.received) < 12 and time.monotonic() < deadline:
            await asyncio.sleep(0.05)
    finally:
        driver.exit_event.set()
        reader.join(timeout=10)
        os.close(primary)
        os.close(secondary)
    assert not reader.is_alive()
    assert names(driver.received) == ["escape", "colon", *"secgroups", "enter", "up"]


async def test_escape_then_a_view_switch_in_one_read_closes_the_dialog(
    make_app: MakeApp, demo_service: NetconService
) -> None:
    app = make_app(start="instances")
    async with app.run_test(size=(80, 24)) as pilot:
        await settle(pilot)
        before = {i.name: i.security_groups for i in demo_service.list_instances()}
        await pilot.press("g")  # one key: the picker of the instance's groups
        await settle(pilot)
        assert app.screen is not app.main
        driver = app._driver
        assert driver is not None
        # Esc `:secgroups` Enter as one read from the terminal: handed to the console
        # as the terminal driver hands what its parser makes of it.
        for message in parsed("\x1b:secgroups\r"):
            driver.process_message(message)
        await settle(pilot)
        assert app.screen is app.main  # the picker was cancelled, not confirmed
        assert app.main.state.spec.name == "secgroups"
        after = {i.name: i.security_groups for i in demo_service.list_instances()}
        assert after == before


# -- no terminal -----------------------------------------------------------------------


def _netcon() -> list[str]:
    beside = Path(sysconfig.get_path("scripts")) / "netcon"
    found = str(beside) if beside.exists() else shutil.which("netcon")
    return [found] if found else [sys.executable, "-m", "tui"]


def _environment(tmp_path: Path) -> dict[str, str]:
    environment = {
        **os.environ,
        "XDG_CONFIG_HOME": str(tmp_path / "config"),
        "XDG_DATA_HOME": str(tmp_path / "data"),
        "XDG_STATE_HOME": str(tmp_path / "state"),
    }
    environment.pop("TEXTUAL_DRIVER", None)
    return environment


@pytest.mark.parametrize("options", [
    [],
    ["--read-only"],
    ["demo", "--open"],  # opened by the command line, not the console's own start
])
def test_netcon_without_a_terminal_says_so_and_exits(
    tmp_path: Path, options: list[str]
) -> None:
    database = f"sqlite:///{tmp_path / 'cloud.db'}"
    subprocess.run(
        [*_netcon(), "--db", database, "demo"], check=True, capture_output=True,
        env=_environment(tmp_path),
    )
    done = subprocess.run(
        [*_netcon(), "--db", database, *options], stdin=subprocess.DEVNULL,
        capture_output=True, text=True, timeout=30, env=_environment(tmp_path),
    )
    assert done.returncode == 2
    # `demo --open` says first that it leaves the database as it is.
    assert done.stderr.splitlines()[-1] == NEEDS_TERMINAL
    assert done.stdout == ""


def test_netcon_named_to_use_the_terminal_driver_without_a_terminal_exits(
    tmp_path: Path,
) -> None:
    database = f"sqlite:///{tmp_path / 'cloud.db'}"
    environment = {
        **_environment(tmp_path), "TEXTUAL_DRIVER": "textual.drivers.linux_driver:LinuxDriver"
    }
    subprocess.run(
        [*_netcon(), "--db", database, "demo"], check=True, capture_output=True,
        env=environment,
    )
    done = subprocess.run(
        [*_netcon(), "--db", database], stdin=subprocess.DEVNULL,
        capture_output=True, text=True, timeout=30, env=environment,
    )
    assert (done.returncode, done.stderr) == (2, NEEDS_TERMINAL + "\n")


def test_netcon_with_keys_from_a_terminal_but_no_screen_exits(tmp_path: Path) -> None:
    database = f"sqlite:///{tmp_path / 'cloud.db'}"
    subprocess.run(
        [*_netcon(), "--db", database, "demo"], check=True, capture_output=True,
        env=_environment(tmp_path),
    )
    # stdin a terminal, stderr (where Textual draws) a pipe.
    primary, secondary = pty.openpty()
    try:
        done = subprocess.run(
            [*_netcon(), "--db", database], stdin=secondary,
            capture_output=True, text=True, timeout=30, env=_environment(tmp_path),
        )
    finally:
        os.close(primary)
        os.close(secondary)
    assert done.returncode == 2
    assert done.stderr == NEEDS_TERMINAL + "\n"
