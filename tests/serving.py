"""A real `netcon serve` for tests: started as its own process on a free loopback port,
its printed URL read, its console processes found, and stopped by its own pid."""

from __future__ import annotations

import os
import re
import select
import signal
import subprocess
import sys
import time
from pathlib import Path
from urllib.parse import urlsplit

URL = re.compile(r"open (https?://\S+/\?token=\S+)")


def environment(tmp_path: Path) -> dict[str, str]:
    return {
        **os.environ,
        "XDG_CONFIG_HOME": str(tmp_path / "config"),
        "XDG_DATA_HOME": str(tmp_path / "data"),
        "XDG_STATE_HOME": str(tmp_path / "state"),
    }


def netcon(*words: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    """The `netcon` command (``python -m tui`` is the installed executable)."""
    return subprocess.run(
        [sys.executable, "-m", "tui", *words], env=env, capture_output=True, text=True,
        timeout=120,
    )


def children(pid: int) -> list[int]:
    """The live processes whose parent is ``pid``."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        # The command name is in parentheses and may hold spaces.
        fields = stat.rsplit(")", 1)[1].split()
        if int(fields[1]) == pid and fields[0] != "Z":
            found.append(int(entry.name))
    return found


def alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"


def wait_until(test: object, what: str, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if callable(test) and test():
            return
        time.sleep(0.05)
    raise AssertionError(f"{what}: not within {timeout:.0f} s")


class Served:
    """`netcon --db URL serve --listen 127.0.0.1:0 ARGS...`, running."""

    def __init__(self, tmp_path: Path, db: str, *args: str, env: dict[str, str] | None = None):
        self.log = tmp_path / f"serve-{os.getpid()}-{time.monotonic_ns()}.log"
        self.env = env or environment(tmp_path)
        self._errors = self.log.open("w")
        self.process = subprocess.Popen(
            [sys.executable, "-m", "tui", "--db", db, "serve", "--listen", "127.0.0.1:0", *args],
            env=self.env, stdout=subprocess.PIPE, stderr=self._errors, text=True,
        )
        self.printed = self._first_line()
        match = URL.search(self.printed)
        assert match, f"no URL in {self.printed!r}; log: {self.log.read_text()}"
        self.url = match.group(1)
        parts = urlsplit(self.url)
        self.base = f"{parts.scheme}://{parts.netloc}"
        self.port = parts.port

    def _first_line(self) -> str:
        assert self.process.stdout is not None
        ready, _, _ = select.select([self.process.stdout], [], [], 60)
        if not ready:
            self.stop()
            raise AssertionError(f"netcon serve printed nothing; log: {self.log.read_text()}")
        return self.process.stdout.readline()

    @property
    def pid(self) -> int:
        return self.process.pid

    def consoles(self) -> list[int]:
        return children(self.pid)

    def wait_consoles(self, count: int) -> list[int]:
        wait_until(lambda: len(self.consoles()) == count, f"{count} console process(es)")
        return self.consoles()

    def messages(self) -> str:
        return self.log.read_text()

    def stop(self) -> int:
        """SIGTERM, as systemd stops it; its exit status."""
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(30)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self._errors.close()
        if self.process.stdout is not None:
            self.process.stdout.close()
        return self.process.returncode
