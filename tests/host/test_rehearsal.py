"""README's rehearsal, as written: a bare `ip netns add`, then `netcon host apply --netns`
with a DHCP network that has instances (its metadata server must come up there)."""

from __future__ import annotations

import json
import sys
from pathlib import Path

from core.linux.ports import port_name
from tests.host.conftest import Lab, in_ns, make_service, sh
from tests.host.test_cli import netcon


def test_a_rehearsal_in_a_bare_namespace_applies_and_serves(lab: Lab, tmp_path: Path) -> None:
    rehearsal = f"nc-rehearsal-{lab.tag}"
    # As README says, and nothing more: lo stays down, and the only link added is the
    # one public_interface names (both ends of a veth, inside the namespace).
    sh("ip", "netns", "add", rehearsal)
    lab.namespaces.append(rehearsal)
    sh("ip", "-n", rehearsal, "link", "add", "pub0", "type", "veth", "peer", "name", "pub0b")
    assert "state DOWN" in in_ns(rehearsal, "ip", "link", "show", "lo").stdout

    service = make_service(lab)
    service.create_project("ops", manager="flatdhcp")
    service.create_networks("10.96.0.0/24", 1, 256, manager="flatdhcp", bridge="brdhcp")
    vm = service.launch_instance("ops", "web1").addresses[0]

    plan = netcon(lab, "host", "plan", "--netns", rehearsal)
    assert plan.returncode == 0, plan.stderr
    assert "set lo up" in plan.stdout
    applied = netcon(lab, "host", "apply", "--netns", rehearsal)
    assert applied.returncode == 0, applied.stderr
    assert "start metadata server on port 8775" in applied.stdout
    links = in_ns(rehearsal, "ip", "link").stdout
    assert "brdhcp" in links
    again = netcon(lab, "--json", "host", "plan", "--netns", rehearsal)
    assert again.returncode == 0 and json.loads(again.stdout)["operations"] == []

    # What the rehearsal brought up serves a guest: its lease, and its metadata.
    guest = lab.netns("guest")
    lab.plug(rehearsal, port_name(vm.mac), "brdhcp", guest, vm.mac)
    assert lab.dhcp_client(guest) == vm.address
    answer = in_ns(
        guest,
        sys.executable,
        "-c",
        "import urllib.request\n"
        "print(urllib.request.urlopen('http://169.254.169.254/latest/meta-data/hostname',"
        " timeout=5).read().decode())",
        check=False,
    )
    assert answer.stdout.strip().startswith("web1"), answer.stderr
