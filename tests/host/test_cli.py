"""`netcon host plan|apply --netns` and `netcon dhcp-event` through the real command line,
and auto-apply after a service call."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from core.linux.ports import port_name
from tests.host.conftest import Lab, make_service
from tests.host.scenario import network_host

REPO = Path(__file__).resolve().parents[2]


def netcon(
    lab: Lab,
    *argv: str,
    host: str = "nethost",
    settings: str = "",
    program: tuple[str, ...] = ("-m", "core.cli"),
) -> subprocess.CompletedProcess[str]:
    """`netcon ARGV` as the admin of ``host`` runs it (``settings``: more netcon.toml;
    ``program``: what the interpreter runs, `python -m core.cli` unless told)."""
    folder = "config" if host == "nethost" else f"config-{host}"
    config = lab.tmp_path / folder / "netcon"
    config.mkdir(parents=True, exist_ok=True)
    (config / "netcon.toml").write_text(
        f'host = "{host}"\nstate_dir = "{lab.state_dir}"\npublic_interface = "pub0"\n'
        f'vlan_interface = "und0"\nsegmentation = "vxlan"\n{settings}'
    )
    env = dict(os.environ, XDG_CONFIG_HOME=str(lab.tmp_path / folder), PYTHONPATH=str(REPO))
    url = "sqlite:///" + str(lab.tmp_path / "n.db")
    return subprocess.run(
        [sys.executable, *program, "--db", url, *argv],
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


# The parts of the service, and the views, that making a host match the database never uses.
NOT_FOR_THE_HOST = {
    "core.views",
    "core.store.listing",
    "core.service.networks",
    "core.service.guests",
    "core.service.instances",
    "core.service.floating",
    "core.service.secgroups",
    "core.service.ingress",
    "core.service.vpn",
    "core.service.operations",
}

# `python -m core.cli`, saying at the end which modules the command loaded.
REPORTS_MODULES = (
    "-c",
    "import json, sys\n"
    "from core.cli import main\n"
    "status = main()\n"
    "print('MODULES ' + json.dumps(sorted(sys.modules)), file=sys.stderr)\n"
    "sys.exit(status)\n",
)


def test_host_apply_loads_no_part_of_the_service_it_does_not_use(lab: Lab, tmp_path: Path) -> None:
    host = network_host(lab, tmp_path)
    host.service.create_project("alpha")
    host.service.create_networks("10.91.0.0/24", 1, 256)
    host.service.launch_instance("alpha", "vm1")

    applied = netcon(lab, "host", "apply", "--netns", host.ns, program=REPORTS_MODULES)
    assert applied.returncode == 0, applied.stderr
    assert "  create bridge br100" in applied.stdout.splitlines()
    marker = applied.stderr.rindex("MODULES ")
    loaded = set(json.loads(applied.stderr[marker + len("MODULES ") :]))
    assert "core.service.host" in loaded and "core.linux.executor" in loaded
    assert not loaded & NOT_FOR_THE_HOST, loaded & NOT_FOR_THE_HOST


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
    assert host.sync.plan().operations == ()
    service.create_floating_range("nethost", "203.0.113.20")
    service.allocate_floating_ip("alpha")
    service.associate_floating_ip("203.0.113.20", "vm1")
    assert host.sync.plan().operations == ()
    # Each change was applied as it came: the host owes none of them.
    assert service.pending_for("nethost").changes == ()
    addresses = {a.address for a in host.layer.observe().addresses}
    assert "203.0.113.20" in addresses


def test_host_plan_names_a_flatdhcp_bridge_with_no_link_to_its_network_host(
    lab: Lab, tmp_path: Path
) -> None:
    """A FlatDHCP network served by nethost, with an instance on a second host (cmphost)
    and no bridge_interface: cmphost's bridge is an island, so its guest gets no address.
    `host plan` on cmphost says so and why, and still plans (and apply still brings in)
    everything else; once flat_interface links the bridges the guest gets its lease."""
    from tests.host.conftest import in_ns

    host = network_host(lab, tmp_path)
    compute = lab.netns("cmp")
    # The underlay between the two hosts, and a second pair of links a flat network can
    # be bridged over.
    in_ns(host.ns, "ip", "link", "del", "und0")
    lab.veth(host.ns, "und0", compute, "und0")
    lab.address(host.ns, "und0", "192.168.90.1/24")
    lab.address(compute, "und0", "192.168.90.2/24")
    lab.veth(host.ns, "flat0", compute, "flat0")
    service = host.service
    service.create_project("ops", manager="flatdhcp")
    service.create_project("alpha")
    service.create_networks("10.92.0.0/24", 1, 256, manager="flatdhcp", bridge="brdhcp")
    service.create_networks("10.93.0.0/24", 1, 256, 130)
    for name in ("nethost", "cmphost"):
        service.heartbeat(name)
    for cidr in ("10.92.0.0/24", "10.93.0.0/24"):
        service.modify_network(cidr, host="nethost")
    far = service.launch_instance("ops", "far", host="cmphost").addresses[0]
    service.launch_instance("alpha", "vx", host="cmphost")
    assert {n.host for n in service.list_networks()} == {"nethost"}
    host.sync.sync()

    warning = (
        "netcon: warning: FlatDHCP network 10.92.0.0/24: its bridge brdhcp on this host has "
        "no link to nethost, which serves its DHCP and gateway, so the guests here (1 port(s)) "
        "get no address; set flat_interface in this host's netcon.toml to the interface that "
        "reaches it"
    )
    plan = netcon(lab, "host", "plan", "--netns", compute, host="cmphost")
    assert plan.returncode == 0, plan.stderr
    assert plan.stderr.splitlines() == [warning]
    # Nothing is held back for it: both networks' bridges, and the VLAN network's VXLAN.
    for line in ("create bridge brdhcp", "create bridge br130", "create VXLAN vx130"):
        assert any(step.strip().startswith(line) for step in plan.stdout.splitlines()), line
    applied = netcon(lab, "host", "apply", "--netns", compute, host="cmphost")
    assert applied.returncode == 0 and applied.stderr.splitlines() == [warning]
    assert netcon(lab, "--json", "host", "plan", "--netns", compute, host="cmphost").stdout
    guest = lab.netns("far")
    lab.plug(compute, port_name(far.mac), "brdhcp", guest, far.mac)
    assert lab.dhcp_client(guest) is None  # as the warning says

    # Both hosts bridge the network over flat0: the warning goes, the guest is served.
    linked = 'flat_interface = "flat0"\n'
    assert netcon(lab, "host", "apply", "--netns", host.ns, settings=linked).returncode == 0
    fixed = netcon(lab, "host", "apply", "--netns", compute, host="cmphost", settings=linked)
    assert fixed.returncode == 0 and fixed.stderr == ""
    assert "enslave flat0 to brdhcp" in fixed.stdout
    assert lab.dhcp_client(guest) == far.address
