"""The metadata server is launched once dnsmasq serves and waited for last: an apply
that fails in between leaves no server behind."""

from __future__ import annotations

import os
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, cast

import pytest

from core.errors import HostError
from core.linux import nft
from core.linux.executor import Executor
from core.linux.metadata import server
from core.linux.metadata.operations import StartMetadataServer
from core.linux.metadata.spec import ServerFiles
from core.linux.netlink import Netlink
from core.linux.operations import Operation, Phase, Plan

if TYPE_CHECKING:
    from core.linux.execution import Execution

# Writes its pid where the test looks for it, then waits to be told to serve.
SLEEPER = "import os, sys, time; open(sys.argv[1], 'w').write(str(os.getpid())); time.sleep(60)"


@dataclass(frozen=True)
class FailingFollowUp(Operation):
    """Fails once the launched server runs (its pid file written)."""

    pid_file: str
    phase = Phase.DHCP_FOLLOW_UP

    def describe(self) -> str:
        return "follow dnsmasq up, and fail"

    def execute(self, run: Execution) -> None:
        deadline = time.monotonic() + 30
        while not Path(self.pid_file).exists() and time.monotonic() < deadline:
            time.sleep(0.01)
        raise HostError("follow-up failed")


def _executor(tmp_path: Path) -> Executor:
    # No kernel work in these plans: the netlink socket is never used.
    return Executor(
        netlink=cast(Netlink, None),
        nft=nft.Nft("nft", None),
        netns=None,
        dhcp_dir=tmp_path / "dhcp",
        journal=tmp_path / "journal",
        nat_marker=tmp_path / "nat",
        dnsmasq_env={},
        state_dir=str(tmp_path),
    )


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


def test_a_phase_failing_after_the_launch_stops_the_server(tmp_path: Path) -> None:
    files = ServerFiles(tmp_path / "metadata")
    marker = tmp_path / "sleeper.pid"
    start = StartMetadataServer(
        (sys.executable, "-c", SLEEPER, str(marker)), tuple(os.environ.items()), files, 8775
    )
    plan = Plan(operations=(start, FailingFollowUp(str(marker))))
    with pytest.raises(HostError, match="follow-up failed"):
        _executor(tmp_path).apply(plan)
    assert not _alive(int(marker.read_text()))


def test_a_server_that_cannot_start_is_reported_by_the_wait(tmp_path: Path) -> None:
    files = ServerFiles(tmp_path / "metadata")
    missing = str(tmp_path / "no-such-program")
    launched = server.launch(StartMetadataServer((missing,), (), files, 8775))
    assert launched.child is None
    failures = server.wait_all([launched], None)
    assert len(failures) == 1 and failures[0].startswith("metadata server: cannot start")
    launched.abandon()  # nothing to stop: no error
