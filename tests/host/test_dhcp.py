"""DHCP for real: dnsmasq hands an instance exactly the address netcon allocated."""

from __future__ import annotations

import os
import signal
import time
from pathlib import Path

from core.linux.operations import ReleaseLeases, StartDnsmasq
from core.linux.ports import port_name
from tests.host.conftest import Lab
from tests.host.scenario import network_host


def _lease_state(service, address: str) -> bool:  # type: ignore[no-untyped-def]
    page = service.list_fixed_ips(search=address)
    return next(f.leased for f in page.rows if f.address == address)


def test_instance_gets_its_address_and_an_unknown_mac_gets_none(lab: Lab, tmp_path: Path) -> None:
    host = network_host(lab, tmp_path)
    service = host.service
    service.create_project("alpha")
    service.create_networks("10.20.0.0/24", 1, 256)
    vm = service.launch_instance("alpha", "vm1").addresses[0]

    first = host.sync.sync()
    assert any(isinstance(op, StartDnsmasq) for op in first.operations)
    bridge = service.list_networks()[0].bridge

    instance = host.instance("vm1", vm.mac, bridge)
    assert lab.dhcp_client(instance) == vm.address

    stranger = host.instance("vmx", "fa:16:3e:7f:7f:7f", bridge)
    assert lab.dhcp_client(stranger) is None

    # dnsmasq's --dhcp-script reported the lease to the database.
    deadline = time.monotonic() + 10
    while not _lease_state(service, vm.address) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert _lease_state(service, vm.address)

    assert host.sync.plan().operations == ()


def test_allocation_rewrites_hosts_file_and_dead_dnsmasq_is_restarted(
    lab: Lab, tmp_path: Path
) -> None:
    host = network_host(lab, tmp_path)
    service = host.service
    service.create_project("alpha")
    service.create_networks("10.21.0.0/24", 1, 256)
    service.launch_instance("alpha", "vm1")
    host.sync.sync()
    bridge = service.list_networks()[0].bridge

    # A second instance: its port and membership are two filter elements, the hosts
    # file changes and dnsmasq is told by SIGHUP.
    vm2 = service.launch_instance("alpha", "vm2").addresses[0]
    change = host.sync.sync().describe()
    assert change == [
        f"add {vm2.address} (vm2) to the members of alpha/default",
        f"filter port {port_name(vm2.mac)} of vm2 ({vm2.address}, {vm2.mac}); "
        "ingress by alpha/default",
        f"write dnsmasq hosts file for {bridge} (2 host(s))",
        change[3],
    ]
    assert change[3].startswith(f"reload dnsmasq for {bridge}")

    # Kill dnsmasq: the next apply starts it again and DHCP works.
    observed = host.layer.observe().dnsmasq[bridge]
    assert observed.pid is not None
    os.kill(observed.pid, signal.SIGKILL)
    time.sleep(0.2)
    assert [op.describe() for op in host.sync.sync().operations] == [f"start dnsmasq for {bridge}"]
    instance = host.instance("vm2", vm2.mac, bridge)
    assert lab.dhcp_client(instance) == vm2.address
    assert host.sync.plan().operations == ()


def test_terminated_instances_lease_is_released_at_once(lab: Lab, tmp_path: Path) -> None:
    host = network_host(lab, tmp_path)
    service = host.service
    service.create_project("alpha")
    service.create_networks("10.22.0.0/29", 1, 8)
    vm = service.launch_instance("alpha", "vm1").addresses[0]
    host.sync.sync()
    bridge = service.list_networks()[0].bridge
    assert lab.dhcp_client(host.instance("vm1", vm.mac, bridge)) == vm.address
    deadline = time.monotonic() + 10
    while not _lease_state(service, vm.address) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert _lease_state(service, vm.address)

    # Terminated while its lease runs: the address is held until the lease is gone.
    service.terminate_instance("vm1")
    plan = host.sync.plan()
    releases = [op for op in plan.operations if isinstance(op, ReleaseLeases)]
    assert [op.leases for op in releases] == [((vm.address, vm.mac),)]
    host.layer.apply(plan)

    # dnsmasq drops the lease and its script tells the database: free again, no timeout.
    deadline = time.monotonic() + 10
    while _lease_state(service, vm.address) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not _lease_state(service, vm.address)
    assert service.launch_instance("alpha", "vm2").addresses[0].address == vm.address
    host.sync.sync()
    assert host.sync.plan().operations == ()
