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


# A tmux server of these tests' own, kept up by an idle session: a server whose last
# session closes exits, and a session started in that instant would fail.
TMUX = ["tmux", "-L", f"nc-tui-{os.getpid()}"]


@pytest.fixture(scope="module", autouse=True)
def tmux_server() -> Iterator[None]:
    subprocess.run([*TMUX, "new-session", "-d", "-s", "keeper", "sleep 3600"], check=True)
    try:
        yield
    finally:
        subprocess.run([*TMUX, "kill-server"], capture_output=True)


class Terminal:
    def __init__(self, session: str) -> None:
        self.session = session

    def screen(self) -> str:
        return subprocess.run(
            [*TMUX, "capture-pane", "-p", "-t", self.session],
            check=True, capture_output=True, text=True,
        ).stdout

    def keys(self, *keys: str, literal: bool = False) -> None:
        command = [*TMUX, "send-keys", "-t", self.session]
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

    def wait_gone(self, text: str, timeout: float = 20.0) -> str:
        deadline = time.monotonic() + timeout
        screen = self.screen()
        while text in screen and time.monotonic() < deadline:
            time.sleep(0.1)
            screen = self.screen()
        assert text not in screen, f"{text!r} stayed; the screen was:\n{screen}"
        return screen

    def alive(self) -> bool:
        return (
            subprocess.run(
                [*TMUX, "has-session", "-t", self.session], capture_output=True
            ).returncode
            == 0
        )


def _env(tmp_path: Path) -> dict[str, str]:
    return {
        **os.environ,
        "XDG_CONFIG_HOME": str(tmp_path / "config"),
        "XDG_DATA_HOME": str(tmp_path / "data"),
        "XDG_STATE_HOME": str(tmp_path / "state"),
        "TERM": "xterm-256color",
        "ESCDELAY": "25",
    }


def _open(tmp_path: Path, *options: str, size: tuple[int, int] = (80, 24)) -> Terminal:
    url = f"sqlite:///{tmp_path / 'cloud.db'}"
    env = _env(tmp_path)
    if not (tmp_path / "cloud.db").exists():
        subprocess.run(
            [str(NETCON), "--db", url, "demo"], check=True, env=env, capture_output=True
        )
    session = f"nc-tui-{secrets.token_hex(2)}"
    exports = [
        item
        for name in ("XDG_CONFIG_HOME", "XDG_DATA_HOME", "XDG_STATE_HOME", "ESCDELAY")
        for item in ("-e", f"{name}={env[name]}")
    ]
    subprocess.run(
        [
            *TMUX, "new-session", "-d", "-s", session, "-x", str(size[0]), "-y",
            str(size[1]), *exports, f"{NETCON} --db {url} {' '.join(options)}",
        ],
        check=True, env=env,
    )
    return Terminal(session)


def _wait_closed(terminal: Terminal) -> None:
    deadline = time.monotonic() + 10
    while terminal.alive() and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not terminal.alive(), "netcon did not quit"


@pytest.fixture
def terminal(tmp_path: Path) -> Iterator[Terminal]:
    term = _open(tmp_path)
    try:
        yield term
    finally:
        subprocess.run([*TMUX, "kill-session", "-t", term.session], capture_output=True)


def test_netcon_console_in_tmux(terminal: Terminal, tmp_path: Path) -> None:
    screen = terminal.wait_for("Networks (6)")
    assert "10.0.0.0/24" in screen and "alpha" in screen
    assert "cloud.db" in screen  # the header names the database
    # Textual reads the terminal's replies to its start-up queries first; keys sent in
    # that instant are dropped by the terminal driver, not by the console.
    time.sleep(1.0)

    # A unique prefix and Enter opens the view.
    terminal.keys(":ins", literal=True)
    terminal.keys("Enter")
    screen = terminal.wait_for("Instances (7)")
    assert "web1" in screen

    terminal.keys(":fip", literal=True)
    terminal.keys("Enter")
    screen = terminal.wait_for("Floating IPs (14)")
    assert "203.0.113.1" in screen

    terminal.keys("/app1", literal=True)
    screen = terminal.wait_for("/app1")
    assert "203.0.113.4" in screen and "203.0.113.1 " not in screen
    terminal.keys("Enter")  # keep the filter, back to the table; Enter drills
    terminal.keys("Enter")
    screen = terminal.wait_for("203.0.113.4 › Instances (1)")
    assert "app1" in screen

    # `-` goes back to the view before the last switch.
    terminal.keys("-", literal=True)
    terminal.wait_for("Instances (7)")

    # A refused form keeps everything typed and says why under the field.
    terminal.keys(":networks", literal=True)
    terminal.keys("Enter")
    terminal.wait_for("Networks (6)")
    terminal.keys("n", literal=True)
    terminal.wait_for("New network (nova-network")
    terminal.keys("10.0.0.0/24", literal=True)
    terminal.keys("Enter")
    screen = terminal.wait_for("overlap")
    assert "10.0.0.0/24" in screen and "New network (nova-network" in screen
    terminal.keys("Escape")
    terminal.wait_gone("New network (nova-network")

    terminal.keys("?", literal=True)
    terminal.wait_for("console.command")
    terminal.keys("Escape")
    terminal.wait_gone("console.command")

    terminal.keys("q", literal=True)
    _wait_closed(terminal)

    # The `:` history outlives the process.
    again = _open(tmp_path)
    try:
        again.wait_for("Networks (6)")
        time.sleep(1.0)
        again.keys(":", literal=True)
        again.keys("Up")
        screen = again.wait_for("networks")
        again.keys("Up")
        again.wait_for("floating")
        again.keys("Enter")
        again.wait_for("Floating IPs (14)")
        again.keys("C-q")
        _wait_closed(again)
    finally:
        subprocess.run([*TMUX, "kill-session", "-t", again.session], capture_output=True)


def test_netcon_read_only_in_tmux(tmp_path: Path) -> None:
    terminal = _open(tmp_path, "--read-only")
    try:
        screen = terminal.wait_for("Networks (6)")
        assert "read-only" in screen
        assert "New network" not in screen and "Delete network" not in screen
        time.sleep(1.0)
        terminal.keys("n", literal=True)
        time.sleep(0.5)
        assert "New network (nova-network" not in terminal.screen()
    finally:
        subprocess.run([*TMUX, "kill-session", "-t", terminal.session], capture_output=True)


def test_netcon_context_and_keymap_from_netcon_toml(tmp_path: Path) -> None:
    config = tmp_path / "config" / "netcon"
    config.mkdir(parents=True)
    (config / "netcon.toml").write_text(
        '[contexts.lab]\ndatabase = "sqlite:///*cloud.db"\nlabel = "LAB"\ncolor = "darkred"\n'
        '[keys]\n"network.create" = "N"\n'
    )
    terminal = _open(tmp_path)
    try:
        screen = terminal.wait_for("Networks (6)")
        assert "LAB" in screen
        assert "N New network" in screen  # the footer shows the admin's key
        time.sleep(1.0)
        terminal.keys("N", literal=True)
        terminal.wait_for("New network (nova-network")
    finally:
        subprocess.run([*TMUX, "kill-session", "-t", terminal.session], capture_output=True)


def test_keys_typed_ahead_act_on_the_view_they_were_typed_for(terminal: Terminal) -> None:
    terminal.wait_for("Networks (6)")
    time.sleep(1.0)  # the terminal's replies to Textual's start-up queries come first

    # One burst: `D` is typed while the floating IPs are still being read. It acts on
    # them (Release, refused: the first address is associated), never on the projects
    # view opened after it (Delete project).
    terminal.keys(":fip", "Enter", "D", ":projects", "Enter")
    screen = terminal.wait_for("Projects (")
    assert "disassociate it first" in terminal.wait_for("disassociate it first")
    assert "y yes · n no" not in screen  # no confirmation asked

    # Sort keys sort the view they were typed on, not the audit log that follows.
    terminal.keys(":fip", "Enter", "S", "s", ":audit", "Enter")
    screen = terminal.wait_for("Audit log (")
    assert " sort " not in screen
    terminal.keys("-")
    screen = terminal.wait_for("Floating IPs (14)")
    assert "sort Project ▲" in screen

    # Editing keys in a form keep their place among the letters typed after them.
    terminal.keys(":networks", "Enter", "n", "10.0.0.30", "BSpace", "1/24")
    screen = terminal.wait_for("New network (nova-network")
    terminal.wait_for("10.0.0.31/24")
    terminal.keys("Escape")
    terminal.wait_gone("New network (nova-network")


def test_escape_typed_ahead_closes_the_dialog_before_the_keys_after_it(
    tmp_path: Path,
) -> None:
    terminal = _open(tmp_path)
    try:
        terminal.wait_for("Networks (6)")
        time.sleep(1.0)  # the terminal's replies to Textual's start-up queries come first
        terminal.keys(":instances", "Enter")
        terminal.wait_for("Instances (7)")
        terminal.keys("g")
        terminal.wait_for("Security groups of")
        # One send-keys call: ESC and the keys after it reach netcon in one read. The
        # picker is cancelled (never confirmed) and the `:` command switches views.
        terminal.keys("Escape", ":secgroups", "Enter")
        screen = terminal.wait_for("Security groups (")
        assert "Security groups of" not in screen
        assert "Groups" not in screen  # nor does it stay open behind the view
    finally:
        subprocess.run([*TMUX, "kill-session", "-t", terminal.session], capture_output=True)
