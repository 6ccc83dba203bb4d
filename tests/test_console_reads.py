"""Service reads the console relies on: fixed-IP search over every shown column, VPN
users, and a host plan as a view that names what each operation acts on."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from core.errors import InvalidInput
from core.linux.operations import AddAddress, AddNatElement, CreateBridge, Plan, WriteHostsFile
from core.service import NetconService
from core.service.host import _plan_view
from tests.support import make_service


@pytest.fixture
def service(tmp_path: Path) -> Iterator[NetconService]:
    current = make_service(tmp_path)
    yield current
    current.db.dispose()


def test_fixed_ip_search_covers_state_network_and_negation(service: NetconService) -> None:
    service.create_project("alpha")
    service.create_networks("10.0.0.0/24", 1, 256)
    service.launch_instance("alpha", "web1")
    page = service.list_fixed_ips(network="10.0.0.0/24", search="ALLOCATED")
    assert [f.instance for f in page.rows] == ["web1"]
    assert service.list_fixed_ips(search="10.0.0.0/24").total == 256  # the network column
    kept = service.list_fixed_ips(network="10.0.0.0/24", search="free", negate=True)
    assert {f.state for f in kept.rows} == {"reserved", "allocated"}
    assert kept.total == 5  # network, gateway, VPN address and broadcast, and web1's
    pattern = service.list_fixed_ips(search=r"^10\.0\.0\.1\d$", regex=True)
    assert [f.address for f in pattern.rows] == [f"10.0.0.{n}" for n in range(10, 20)]
    # The project column: an address's instance's project, else its network's (alpha's
    # VLAN network since web1's launch).
    assert service.list_fixed_ips(search="alph").total == 256
    service.create_project("beta")
    assert service.list_fixed_ips(search="beta").total == 0
    nothing = service.list_fixed_ips(search="no-such-thing", negate=True)
    assert nothing.total == 256
    with pytest.raises(InvalidInput, match="search: is not a regular expression"):
        service.list_fixed_ips(search="(", regex=True)


def test_plan_view_names_what_each_operation_acts_on() -> None:
    plan = Plan(
        operations=(
            CreateBridge("br100"),
            AddAddress("br100", "10.0.0.1", 24),
            AddNatElement("203.0.113.1", "10.0.0.3"),
            WriteHostsFile("br100", "fa:16:3e:00:00:01,web1.novalocal,10.0.0.3\n", ""),
        ),
        problems=("vlan_interface eth1 does not exist",),
    )
    view = _plan_view("nethost1", plan)
    assert view.describe()[0] == "create bridge br100"
    assert view.operations[2].subjects == ("10.0.0.3", "203.0.113.1")
    assert {"fa:16:3e:00:00:01", "10.0.0.3", "br100"} <= set(view.operations[3].subjects)
    assert view.problems == ("vlan_interface eth1 does not exist",)


def test_vpn_users_lists_active_and_revoked(service: NetconService) -> None:
    service.create_project("alpha")
    assert service.list_vpn_users("alpha") == []
    from core.linux.vpn.pki import ProjectPki
    from core.linux.vpn.server import vpn_root

    pki = ProjectPki(vpn_root(service.settings.state_dir) / "alpha", "alpha")
    pki.client("alice")
    pki.client("bob-2")
    serial = pki.revoke("bob-2")
    users = service.list_vpn_users("alpha")
    assert [(u.user, u.state) for u in users] == [("alice", "active"), ("bob-2", "revoked")]
    assert users[1].serial == f"{serial:x}"
