"""A dnsmasq whose start the kernel failed for a moment (its interface dump answered
ENOMEM, as happens with hundreds of bridges and many dnsmasq starting at once) is started
again; any other failure is reported at once."""

from __future__ import annotations

import os
import signal
import sys
from pathlib import Path

from core.linux import dnsmasq

# Fails as dnsmasq fails (its message on stderr, status 5) as long as FAILS says, then
# starts a stand-in daemon that names the pid file in its command line, as dnsmasq does.
FAKE = """#!/bin/bash
count=$(cat "$COUNT" 2>/dev/null || echo 0)
echo $((count + 1)) > "$COUNT"
if [ "$count" -lt "$FAILS" ]; then
  echo "dnsmasq: $MESSAGE" >&2
  exit 5
fi
(exec -a "$0" "$PYTHON" -c 'import time; time.sleep(60)' "--pid-file=$PIDFILE") &
echo $! > "$PIDFILE"
"""


def _start(tmp_path: Path, fails: int, message: str) -> tuple[dict[str, str], int]:
    fake = tmp_path / "dnsmasq"
    fake.write_text(FAKE)
    fake.chmod(0o755)
    files = dnsmasq.DhcpFiles(tmp_path, "br100")
    count = tmp_path / "count"
    env = {
        "PATH": os.environ["PATH"],
        "COUNT": str(count),
        "FAILS": str(fails),
        "MESSAGE": message,
        "PYTHON": sys.executable,
        "PIDFILE": str(files.pid),
    }
    item = dnsmasq.Start(files, (str(fake), f"--pid-file={files.pid}"), env)
    failed = dnsmasq.start_all(None, [item])
    pid = int(files.pid.read_text()) if files.pid.exists() else 0
    if pid and not failed:
        os.kill(pid, signal.SIGTERM)
    return failed, int(count.read_text())


def test_a_start_the_kernel_failed_for_a_moment_is_tried_again(tmp_path: Path) -> None:
    failed, tries = _start(tmp_path, 2, dnsmasq.TRANSIENT)
    assert (failed, tries) == ({}, 3)


def test_it_is_tried_a_bounded_number_of_times(tmp_path: Path) -> None:
    failed, tries = _start(tmp_path, 10, dnsmasq.TRANSIENT)
    assert tries == dnsmasq.START_TRIES
    assert failed == {"br100": f"dnsmasq: {dnsmasq.TRANSIENT}"}


def test_any_other_failure_is_reported_at_once(tmp_path: Path) -> None:
    failed, tries = _start(tmp_path, 1, "failed to create listening socket: Address in use")
    assert tries == 1
    assert failed == {"br100": "dnsmasq: failed to create listening socket: Address in use"}
