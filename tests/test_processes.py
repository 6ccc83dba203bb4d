"""Waiting for processes: pidfd when there is one, /proc otherwise."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from core.linux import processes


def _sleeper(*, ignore_term: bool = False) -> subprocess.Popen[bytes]:
    code = "import signal, time\n"
    if ignore_term:
        code += "signal.signal(signal.SIGTERM, signal.SIG_IGN)\n"
    code += "print('ready', flush=True)\ntime.sleep(60)\n"
    child = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE)
    assert child.stdout is not None and child.stdout.readline() == b"ready\n"
    return child


def test_terminate_ends_a_process_and_returns_once_it_is_gone() -> None:
    child = _sleeper()
    try:
        processes.terminate([child.pid], timeout=5)
        assert not processes.alive(child.pid)
        assert child.wait(1) == -15
    finally:
        child.kill()
        child.wait()


def test_terminate_kills_what_ignores_sigterm() -> None:
    child = _sleeper(ignore_term=True)
    try:
        processes.terminate([child.pid], timeout=0.3)
        assert child.wait(5) == -9
    finally:
        child.kill()
        child.wait()


@pytest.mark.parametrize("pidfd", [True, False])
def test_wait_gone_reports_who_outlived_the_timeout(
    pidfd: bool, monkeypatch: pytest.MonkeyPatch
) -> None:
    if not pidfd:
        # A kernel without pidfd_open: /proc is looked at instead.
        monkeypatch.delattr(os, "pidfd_open", raising=False)
    stays, goes = _sleeper(), _sleeper()
    try:
        goes.terminate()
        assert processes.wait_gone([stays.pid, goes.pid], timeout=2) == [stays.pid]
        assert processes.wait_gone([], timeout=5) == []
    finally:
        for child in (stays, goes):
            child.kill()
            child.wait()


def test_wait_until_gives_up_when_the_watched_process_ends() -> None:
    child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(0.2)"])
    try:
        # Woken by the process's end, not by the (long) timeout.
        assert processes.wait_until(lambda: False, 600, watch=child.pid) is False
        assert child.poll() == 0
    finally:
        child.wait()
    assert processes.wait_until(lambda: True, 0) is True
    flips = iter([False, False, True])
    assert processes.wait_until(lambda: next(flips), 5, interval=0.01) is True
    assert processes.wait_until(lambda: False, 5, running=lambda: False) is False
