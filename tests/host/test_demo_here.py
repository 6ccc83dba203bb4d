"""The demo cloud applies on the machine it was made on: `netcon demo` picks VXLAN
segments where this kernel has no 802.1Q, and `netcon host apply --netns` brings every
network, gateway, dnsmasq and floating IP's NAT up in a namespace the test makes."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from datetime import datetime

from core.linux.netlink import kernel_has_8021q
from tests.host.conftest import Lab, in_ns
from tests.host.test_cli import REPO


def netcon(lab: Lab, *argv: str) -> subprocess.CompletedProcess[str]:
    """`netcon ARGV` with this host's netcon.toml, which asks for 802.1Q segments."""
    config = lab.tmp_path / "config" / "netcon"
    config.mkdir(parents=True, exist_ok=True)
    (config / "netcon.toml").write_text(
        f'host = "nethost"\nstate_dir = "{lab.state_dir}"\npublic_interface = "pub0"\n'
        'vlan_interface = "und0"\nsegmentation = "vlan"\n'
    )
    env = dict(os.environ, XDG_CONFIG_HOME=str(lab.tmp_path / "config"), PYTHONPATH=str(REPO))
    url = "sqlite:///" + str(lab.tmp_path / "demo.db")
    return subprocess.run(
        [sys.executable, "-m", "core.cli", "--db", url, *argv],
        capture_output=True, text=True, env=env, timeout=120, check=False,
    )


def test_the_demo_database_applies_in_a_namespace(lab: Lab) -> None:
    ns = lab.netns("demo")
    public = lab.netns("pub")
    lab.veth(ns, "pub0", public, "eth0")
    lab.address(ns, "pub0", "203.0.113.14/28")
    lab.veth(ns, "und0", ns, "und1")
    lab.address(ns, "und0", "192.168.90.1/24")
    # The Flat network's bridge is the admin's: netcon uses it and never makes it.
    in_ns(ns, "ip", "link", "add", "brflat", "type", "bridge")
    # The settings ask for 802.1Q: the demo still makes what this kernel can carry.
    made = netcon(lab, "init")
    assert made.returncode == 0, made.stderr
    made = netcon(lab, "demo")
    assert made.returncode == 0, made.stderr
    tenant = [n for n in json.loads(netcon(lab, "--json", "network", "list").stdout)
              if n["cidr"].startswith("10.0.")]
    kind = "vlan" if kernel_has_8021q() else "vxlan"

    applied = netcon(lab, "host", "apply", "--netns", ns)
    assert applied.returncode == 0, applied.stderr
    plan = netcon(lab, "host", "plan", "--netns", ns)
    assert plan.returncode == 0, plan.stderr
    assert plan.stdout.strip() == "nothing to change"

    links = in_ns(ns, "ip", "-d", "link").stdout
    assert len(tenant) == 4
    served = [n for n in tenant if n["host"] == "nethost"]
    assert len(served) == 2  # alpha's and beta's
    for network in served:
        assert f"{kind} id {network['vlan']}" in links
    nat = in_ns(ns, "nft", "list", "table", "ip", "netcon").stdout
    assert "203.0.113.1" in nat  # web1's floating IP is NATed
    (nethost,) = json.loads(netcon(lab, "--json", "host", "list").stdout)
    assert nethost["pending"] == 0
    # Applied by hand: recorded as an apply, and the host is not alive without an agent.
    assert nethost["alive"] is False and nethost["applied_change"] is not None


def test_the_console_opens_on_a_namespace(lab: Lab) -> None:
    """`netcon --netns NAME` runs the console's plan and applies in NAME, as `host plan
    --netns` does; the header names it."""
    from core.cli import main
    from core.service import NetconService
    from tui.calls import ServiceSlot
    from tui.context import ConsoleContext
    from tui.pending import UNKNOWN
    from tui.screens.status import header

    ns = lab.netns("console")
    assert netcon(lab, "init").returncode == 0
    url = "sqlite:///" + str(lab.tmp_path / "demo.db")
    opened: list[str | None] = []

    def console(service: NetconService, read_only: bool) -> int:
        opened.append(service.settings.netns)
        context = ConsoleContext(
            ServiceSlot(service), service.settings, url, read_only, datetime.now
        )
        shown.append(header(context, UNKNOWN, paused=False, loading=False, last_refresh=""))
        return 0

    shown: list[object] = []
    assert main(["--db", url, "--netns", ns], console=console) == 0
    assert opened == [ns]
    assert f"ns {ns}" in str(shown[0])
