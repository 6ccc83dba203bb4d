"""The apply lock: one holder at a time, named to whoever waits, and never left taken."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from core.errors import HostError
from core.linux.applylock import ApplyLock, Holder, LockBusy

REPO = Path(__file__).resolve().parents[1]


def _holder_process(state_dir: Path, netns: str | None) -> subprocess.Popen[str]:
    """Another process that takes the lock, says so, and keeps it until killed."""
    program = (
        "import sys, time\n"
        "from core.linux.applylock import ApplyLock\n"
        f"lock = ApplyLock.of({str(state_dir)!r}, {netns!r}, command='netcon host apply')\n"
        "lock.acquire()\n"
        "print('held', flush=True)\n"
        "time.sleep(60)\n"
    )
    process = subprocess.Popen(
        [sys.executable, "-c", program],
        stdout=subprocess.PIPE,
        text=True,
        env=dict(os.environ, PYTHONPATH=str(REPO)),
    )
    assert process.stdout is not None
    assert process.stdout.readline().strip() == "held"
    return process


@pytest.fixture
def holder(tmp_path: Path) -> Iterator[subprocess.Popen[str]]:
    process = _holder_process(tmp_path, "nc-lock-test")
    try:
        yield process
    finally:
        process.kill()
        process.wait()


def test_a_second_apply_is_told_who_holds_the_lock(
    tmp_path: Path, holder: subprocess.Popen[str]
) -> None:
    lock = ApplyLock.of(tmp_path, "nc-lock-test")
    assert not lock.try_acquire()
    found = lock.holder()
    assert found is not None
    assert found.pid == holder.pid
    assert found.command == "netcon host apply"
    assert 0 <= found.held_for < 30
    with pytest.raises(LockBusy) as refused:
        lock.acquire(timeout=0)
    message = str(refused.value)
    assert message.startswith("another apply is changing namespace nc-lock-test: ")
    assert f"pid {holder.pid} (netcon host apply) since " in message
    assert "\n" not in message
    assert isinstance(refused.value, HostError) and refused.value.exit_code == 1
    assert refused.value.holder == found


def test_a_waiter_hears_about_the_holder_every_second_then_gives_up(
    tmp_path: Path, holder: subprocess.Popen[str]
) -> None:
    lock = ApplyLock.of(tmp_path, "nc-lock-test")
    heard: list[tuple[Holder | None, float]] = []
    start = time.monotonic()
    with pytest.raises(LockBusy, match=r"gave up after waiting 2 s"):
        lock.acquire(timeout=2.2, on_wait=lambda who, waited: heard.append((who, waited)))
    assert time.monotonic() - start >= 2.2
    assert len(heard) == 2  # after one second, and after two
    assert all(who is not None and who.pid == holder.pid for who, _ in heard)
    assert 1.0 <= heard[0][1] < 2.0


def test_the_lock_is_free_once_its_holder_is_killed(tmp_path: Path) -> None:
    process = _holder_process(tmp_path, None)
    lock = ApplyLock.of(tmp_path, None)
    assert not lock.try_acquire()
    process.send_signal(signal.SIGKILL)
    process.wait()
    # The kernel let go with the process: no stale lock, no stale holder.
    lock.acquire(timeout=5)
    try:
        assert lock.held()
        assert lock.holder() is not None and lock.holder().pid == os.getpid()  # type: ignore[union-attr]
    finally:
        lock.release()
    assert lock.holder() is None
    assert lock.try_acquire()
    lock.release()


def test_a_waiter_gets_the_lock_when_the_holder_lets_go(tmp_path: Path) -> None:
    lock = ApplyLock.of(tmp_path, "ns1")
    lock.acquire()
    other = ApplyLock.of(tmp_path, "ns1")
    got: list[float] = []

    def wait() -> None:
        start = time.monotonic()
        other.acquire(timeout=10)
        got.append(time.monotonic() - start)
        other.release()

    # Another thread of the same process waits like another process would.
    thread = threading.Thread(target=wait)
    thread.start()
    time.sleep(0.3)
    assert not got
    lock.release()
    thread.join(10)
    assert got and 0.3 <= got[0] < 2


def test_one_thread_may_take_its_own_lock_again(tmp_path: Path) -> None:
    lock = ApplyLock.of(tmp_path, None)
    with lock.hold(timeout=0), ApplyLock.of(tmp_path, None).hold(timeout=0):
        assert lock.held()
    assert not lock.held()
    assert lock.try_acquire()
    lock.release()


def test_each_namespace_has_its_own_lock(tmp_path: Path, holder: subprocess.Popen[str]) -> None:
    for other in (None, "nc-lock-other"):
        lock = ApplyLock.of(tmp_path, other)
        assert lock.try_acquire()
        lock.release()
