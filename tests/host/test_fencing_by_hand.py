"""`netcon host apply` by an admin on a fenced host with no agent, through the real
command line on PostgreSQL: what it brings up lasts one heartbeat lease, a second apply
does nothing, an address whose lease ran out is shown pending and brought back by the
next apply, and `fencing = "off"` makes the addresses permanent again."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from tests.host.conftest import Lab, in_ns
from tests.host.scenario import network_host

pytestmark = pytest.mark.postgres

REPO = Path(__file__).resolve().parents[2]
LEASE = 8
GATEWAY, FLOATING = "10.58.0.1", "203.0.113.58"


def _netcon(lab: Lab, url: str, ns: str, *argv: str, fencing: str = "auto") -> dict[str, Any]:
    config = lab.tmp_path / "config" / "netcon"
    config.mkdir(parents=True, exist_ok=True)
    (config / "netcon.toml").write_text(
        f'host = "nethost"\nstate_dir = "{lab.state_dir}"\npublic_interface = "pub0"\n'
        f'vlan_interface = "und0"\nsegmentation = "vxlan"\nhost_down_time = {LEASE}\n'
        f'fencing = "{fencing}"\n'
    )
    env = dict(os.environ, XDG_CONFIG_HOME=str(lab.tmp_path / "config"), PYTHONPATH=str(REPO))
    result = subprocess.run(
        [sys.executable, "-m", "core.cli", "--db", url, "--json", *argv, "--netns", ns],
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    found: dict[str, Any] = json.loads(result.stdout)
    return found


def _lifetimes(ns: str) -> dict[str, str]:
    """Each IPv4 address of the namespace with its valid_lft, as `ip addr` shows it."""
    found = {}
    for item in json.loads(in_ns(ns, "ip", "-j", "-4", "addr", "show").stdout):
        for info in item.get("addr_info", []):
            valid = info.get("valid_life_time")
            found[info["local"]] = "forever" if valid == 4294967295 else f"{valid}s"
    return found


def test_an_admins_apply_on_a_fenced_host_lasts_one_lease(
    lab: Lab, tmp_path: Path, pg_url: str
) -> None:
    host = network_host(lab, tmp_path, db_url=pg_url, host_down_time=LEASE)
    service = host.service
    service.create_networks("10.58.0.0/24", 1, 256, 158, 11958)
    service.create_project("theta")
    service.launch_instance("theta", "t1")
    service.create_floating_range("nethost", f"{FLOATING}/32")
    service.associate_floating_ip(service.allocate_floating_ip("theta").address, "t1")
    service.db.dispose()

    applied = _netcon(lab, pg_url, host.ns, "host", "apply")
    assert f"add address {GATEWAY}/24 to br158" in applied["operations"]
    lifetimes = _lifetimes(host.ns)
    assert lifetimes[GATEWAY] != "forever" and lifetimes[FLOATING] != "forever"
    assert lifetimes["203.0.113.2"] == "forever"  # the host's own address is left alone
    assert _netcon(lab, pg_url, host.ns, "host", "apply")["operations"] == []

    # Nobody renews it: the kernel takes both addresses away when the lease ends.
    deadline = time.monotonic() + LEASE + 5
    while GATEWAY in _lifetimes(host.ns) and time.monotonic() < deadline:
        time.sleep(0.2)
    assert GATEWAY not in _lifetimes(host.ns) and FLOATING not in _lifetimes(host.ns)
    pending = _netcon(lab, pg_url, host.ns, "host", "plan")["operations"]
    assert f"add address {GATEWAY}/24 to br158" in pending
    assert f"add address {FLOATING}/32 to pub0" in pending
    _netcon(lab, pg_url, host.ns, "host", "apply")
    assert {GATEWAY, FLOATING} <= set(_lifetimes(host.ns))

    # fencing = "off": the same addresses become permanent, once.
    off = _netcon(lab, pg_url, host.ns, "host", "apply", fencing="off")
    assert f"make address {GATEWAY}/24 on br158 permanent (fencing is off)" in off["operations"]
    assert _lifetimes(host.ns)[GATEWAY] == "forever"
    assert _lifetimes(host.ns)[FLOATING] == "forever"
    assert _netcon(lab, pg_url, host.ns, "host", "apply", fencing="off")["operations"] == []
