"""Fixtures for VPN tests: a state directory and, as root, a namespace lab."""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.vpn.lab import Lab, kill_pid, new_tag, processes_using

needs_root = pytest.mark.skipif(
    os.geteuid() != 0, reason="VPN host tests make network namespaces and need root"
)
needs_openvpn = pytest.mark.skipif(
    shutil.which("openvpn") is None, reason="openvpn is not installed (Debian package openvpn)"
)


@pytest.fixture
def state_dir(tmp_path: Path) -> Iterator[Path]:
    # Short: the management socket lives in here and unix socket paths are short.
    path = tmp_path / "st"
    path.mkdir()
    yield path
    # Whatever a failing test left running from this directory (its own OpenVPN
    # servers, found by their configuration path) is killed by pid.
    for pid in processes_using(path):
        kill_pid(pid)


@pytest.fixture
def lab(tmp_path: Path) -> Iterator[Lab]:
    if os.geteuid() != 0:
        pytest.skip("VPN host tests make network namespaces and need root")
    if shutil.which("openvpn") is None:
        pytest.skip("openvpn is not installed (Debian package openvpn)")
    workdir = tmp_path / "lab"
    workdir.mkdir()
    lab = Lab(tag=new_tag(), workdir=workdir, vlan=177, bridge="br177")
    try:
        lab.build()
        yield lab
    finally:
        lab.teardown()
