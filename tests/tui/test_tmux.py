"""The real `netcon` executable in a real terminal (tmux): keys in, screen text out."""

from __future__ import annotations

import os
import secrets
import shutil
import subprocess
import sysconfig
import time
from collections.abc import Iterator
from pathlib import Path

import pytest


def _installed_netcon() -> str | None:
    # pip puts the script beside this interpreter; a version manager's shim for it may
    # not exist until it rehashes, so look there before PATH.
    beside = Path(sysconfig.get_path("scripts")) / "netcon"
    return str(beside) if beside.exists() else shutil.which("netcon")


NETCON = _installed_netcon()

pytestmark = pytest.mark.skipif(
    shutil.which("tmux") is None or NETCON is None,
    reason="needs tmux and the installed netcon executable (pip install -e .)",
)


class Terminal:
    def __init__(self, session: str) -> None:
        self.session = session

    def screen(self) -> str:
        return subprocess.run(
            ["tmux", "capture-pane", "-p", "-t", self.session],
            check=True, capture_output=True, text=True,
        ).stdout

    def keys(self, *keys: str, literal: bool = False) -> None:
        command = ["tmux", "send-keys", "-t", self.session]
        subprocess.run([*command, *(["-l"] if literal else []), *keys], check=True)

    def wait_for(self, text: str, timeout: float = 20.0) -> str:
        deadline = time.monotonic() + timeout
        screen = ""
        while time.monotonic() < deadline:
            screen = self.screen()
            if text in screen:
                return screen
            time.sleep(0.1)
        raise AssertionError(f"{text!r} never appeared; the screen was:\n{screen}")

    def alive(self) -> bool:
        return (
            subprocess.run(
                ["tmux", "has-session", "-t", self.session], capture_output=True
            ).returncode
            == 0
        )


@pytest.fixture
def terminal(tmp_path: Path) -> Iterator[Terminal]:
    url = f"sqlite:///{tmp_path / 'cloud.db'}"
    env = {
        **os.environ,
        "XDG_CONFIG_HOME": str(tmp_path / "config"),
        "XDG_DATA_HOME": str(tmp_path / "data"),
        "TERM": "xterm-256color",
        "ESCDELAY": "25",
    }
    subprocess.run([str(NETCON), "--db", url, "demo"], check=True, env=env, capture_output=True)
    session = f"nc-tui-{secrets.token_hex(2)}"
    subprocess.run(
        [
            "tmux", "new-session", "-d", "-s", session, "-x", "100", "-y", "30",
            "-e", f"XDG_CONFIG_HOME={env['XDG_CONFIG_HOME']}",
            "-e", f"XDG_DATA_HOME={env['XDG_DATA_HOME']}",
            "-e", "ESCDELAY=25",
            f"{NETCON} --db {url}",
        ],
        check=True, env=env,
    )
    term = Terminal(session)
    try:
        yield term
    finally:
        subprocess.run(["tmux", "kill-session", "-t", session], capture_output=True)


def test_netcon_console_in_tmux(terminal: Terminal) -> None:
    screen = terminal.wait_for("Networks (6)")
    assert "10.0.0.0/24" in screen and "alpha" in screen
    assert "cloud.db" in screen  # the header names the database
    # Textual reads the terminal's replies to its start-up queries first; keys sent in
    # that instant are dropped by the terminal driver, not by the console.
    time.sleep(1.0)

    terminal.keys(":fip", literal=True)
    terminal.keys("Enter")
    screen = terminal.wait_for("Floating IPs (14)")
    assert "203.0.113.1" in screen and "web1" in screen

    terminal.keys("/app1", literal=True)
    screen = terminal.wait_for("/app1")
    assert "203.0.113.4" in screen and "203.0.113.1 " not in screen
    terminal.keys("Escape")
    terminal.keys("Escape")
    terminal.wait_for("Floating IPs (14)")

    # Clearing the filter kept the cursor on the row; Enter drills to its instance.
    terminal.keys("Enter")
    screen = terminal.wait_for("203.0.113.4 › Instances (1)")
    assert "app1" in screen

    terminal.keys("?", literal=True)
    terminal.wait_for("Keys")
    terminal.keys("Escape")

    terminal.keys("C-q")
    deadline = time.monotonic() + 10
    while terminal.alive() and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not terminal.alive(), "netcon did not quit on ctrl+q"


def test_netcon_read_only_in_tmux(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'cloud.db'}"
    env = {**os.environ, "XDG_CONFIG_HOME": str(tmp_path / "config")}
    subprocess.run([str(NETCON), "--db", url, "demo"], check=True, env=env, capture_output=True)
    session = f"nc-tui-{secrets.token_hex(2)}"
    subprocess.run(
        ["tmux", "new-session", "-d", "-s", session, "-x", "100", "-y", "30",
         "-e", f"XDG_CONFIG_HOME={env['XDG_CONFIG_HOME']}", f"{NETCON} --db {url} --read-only"],
        check=True, env=env,
    )
    terminal = Terminal(session)
    try:
        screen = terminal.wait_for("Networks (6)")
        assert "read-only" in screen
        assert "New network" not in screen and "Delete network" not in screen
        time.sleep(1.0)
        terminal.keys("n", literal=True)
        time.sleep(0.5)
        assert "New network (nova-network" not in terminal.screen()
    finally:
        subprocess.run(["tmux", "kill-session", "-t", session], capture_output=True)
