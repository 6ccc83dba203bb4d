"""`netcon host plan|apply --netns` and `netcon dhcp-event` through the real command line,
and auto-apply after a service call."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from tests.host.conftest import Lab, make_service
from tests.host.scenario import network_host

REPO = Path(__file__).resolve().parents[2]


def netcon(lab: Lab, *argv: str) -> subprocess.CompletedProcess[str]:
    config = lab.tmp_path / "config" / "netcon"
    config.mkdir(parents=True, exist_ok=True)
    (config / "netcon.toml").write_text(
        f'host = "nethost"\nstate_dir = "{lab.state_dir}"\npublic_interface = "pub0"\n'
        'vlan_interface = "und0"\nsegmentation = "vxlan"\n'
    )
    env = dict(os.environ, XDG_CONFIG_HOME=str(lab.tmp_path / "config"), PYTHONPATH=str(REPO))
    url = "sqlite:///" + str(lab.tmp_path / "n.db")
    return subprocess.run(
        [sys.executable, "-m", "core.cli", "--db", url, *argv],
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
        check=False,
    )


def test_plan_apply_and_dhcp_event_on_the_command_line(lab: Lab, tmp_path: Path) -> None:
    host = network_host(lab, tmp_path)
    service = host.service
    service.create_project("alpha")
    service.create_networks("10.90.0.0/24", 1, 256)
    vm = service.launch_instance("alpha", "vm1").addresses[0]

    plan = netcon(lab, "host", "plan", "--netns", host.ns)
    assert plan.returncode == 0, plan.stderr
    assert "  create bridge br100" in plan.stdout.splitlines()
    assert host.layer.observe().links.get("br100") is None  # plan changed nothing

    dry = netcon(lab, "host", "apply", "--netns", host.ns, "--dry-run")
    assert dry.stdout == plan.stdout
    applied = netcon(lab, "host", "apply", "--netns", host.ns)
    assert applied.returncode == 0, applied.stderr
    assert applied.stdout == plan.stdout
    again = netcon(lab, "--json", "host", "apply", "--netns", host.ns)
    assert json.loads(again.stdout)["operations"] == []
    # Applied by hand, without an agent: the host owes nothing, as `host list` says.
    (nethost,) = json.loads(netcon(lab, "--json", "host", "list").stdout)
    assert service.last_change is not None
    assert (nethost["pending"], nethost["applied_change"]) == (0, service.last_change.change)

    event = netcon(lab, "dhcp-event", "add", vm.mac, vm.address, "vm1")
    assert event.returncode == 0, event.stderr
    assert netcon(lab, "dhcp-event", "init").returncode == 0
    row = service.list_fixed_ips(search=vm.address).rows[0]
    assert row.leased

    listing = netcon(lab, "host", "list")
    assert "nethost" in listing.stdout

    missing = netcon(lab, "host", "plan", "--netns", "nc-absent-0000")
    assert missing.returncode == 2
    assert missing.stderr.strip().count("\n") == 0
    assert "does not exist" in missing.stderr


def test_a_service_change_reaches_the_host_at_once_with_auto_apply(
    lab: Lab, tmp_path: Path
) -> None:
    host = network_host(lab, tmp_path)
    service = make_service(lab, netns=host.ns, auto_apply=True)
    service.create_project("alpha")
    service.create_networks("10.91.0.0/24", 1, 256)
    assert "br100" not in host.layer.observe().links  # no network is on this host yet
    service.launch_instance("alpha", "vm1")
    assert "br100" in host.layer.observe().links
    assert host.layer.plan().operations == ()
    service.create_floating_range("nethost", "203.0.113.20")
    service.allocate_floating_ip("alpha")
    service.associate_floating_ip("203.0.113.20", "vm1")
    assert host.layer.plan().operations == ()
    # Each change was applied as it came: the host owes none of them.
    assert service.pending_for("nethost").changes == ()
    addresses = {a.address for a in host.layer.observe().addresses}
    assert "203.0.113.20" in addresses
