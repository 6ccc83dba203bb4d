"""Leases under `--netns` on PostgreSQL: the dnsmasq in the namespace cannot reach the
database on the host's loopback, yet the leases it gives are recorded and handed back to
it when it is restarted."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from core.linux import dnsmasq
from core.service import NetconService
from tests.host.conftest import Lab
from tests.host.guests import lease, renew
from tests.host.scenario import network_host
from tests.host.test_guest_services import _restart_under

pytestmark = pytest.mark.postgres


def _leased(service: NetconService, address: str) -> bool:
    return any(f.leased for f in service.list_fixed_ips(search=address).rows)


def test_leases_are_restored_under_netns_on_postgresql(
    lab: Lab, tmp_path: Path, pg_url: str
) -> None:
    # Applied by hand here, with no agent to renew a heartbeat lease.
    host = network_host(lab, tmp_path, db_url=pg_url, fencing="off")
    service = host.service
    assert service.db.url.startswith("postgresql")
    service.create_project("alpha")
    (network,) = service.create_networks("10.33.0.0/24", 1, 256)
    vm = service.launch_instance("alpha", "vm1").addresses[0]
    host.sync.sync()
    guest = host.instance("vm1", vm.mac, network.bridge)
    given = lease(lab, guest)
    assert given is not None and given["ip"] == vm.address

    # The lease script, in the namespace, could not tell the database (on the host's
    # loopback, not the namespace's): it spooled the event beside the leases files.
    spool = host.layer.dhcp_dir / dnsmasq.SPOOL
    deadline = time.monotonic() + 10
    while not spool.exists() and time.monotonic() < deadline:
        time.sleep(0.1)
    assert f"add {vm.mac} {vm.address}" in spool.read_text()
    assert not _leased(service, vm.address)

    # The next apply (here, the one that restarts a dnsmasq that died) records it before
    # it reads the database, and hands the new dnsmasq the lease.
    _restart_under(host, network.bridge)
    assert _leased(service, vm.address)
    assert not spool.exists()
    written = (host.layer.dhcp_dir / f"{network.bridge}.leases").read_text().split()
    assert written[1:] == [vm.mac, vm.address, "vm1", "*"]
    # The guest renewing at T1 is ACKed its address by the restarted dnsmasq at once.
    answer = renew(guest, vm.address, network.gateway, vm.mac)
    assert answer["type"] == "ACK" and answer["yiaddr"] == vm.address
    assert answer["server"] == network.gateway
    # udhcpc itself, after another restart, keeps its address too.
    _restart_under(host, network.bridge)
    again = lease(lab, guest)
    assert again is not None and again["ip"] == vm.address
    assert host.sync.plan().operations == ()
