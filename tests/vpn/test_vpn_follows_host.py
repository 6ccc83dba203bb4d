"""A project VPN answers at the address of its network's host, wherever the network goes:
each host says its own vpn_ip, `vpn list` shows where clients must connect now, and the
client configurations made before a move are reported out of date until issued again.

Two hosts share one database file here, each a service with its own settings (as two
machines with their own netcon.toml); no server is started, so no root is needed.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from core.config import load_settings
from core.errors import Conflict
from core.service import NetconService

ADDRESSES = {"h1": "198.51.100.11", "h2": "198.51.100.12"}


@pytest.fixture
def hosts(tmp_path: Path) -> Iterator[dict[str, NetconService]]:
    url = f"sqlite:///{tmp_path / 'netcon.db'}"
    made = {
        name: NetconService(
            url,
            load_settings(
                [], host=name, vpn_ip=address, state_dir=str(tmp_path / name), cnt_vpn_clients=4
            ),
            actor="admin",
        )
        for name, address in ADDRESSES.items()
    }
    for service in made.values():
        service.heartbeat()
    h1 = made["h1"]
    h1.create_networks("10.77.0.0/24", 1, 256, 177, 11940)
    h1.create_project("alpha")
    h1.launch_instance("alpha", "web1", host="h1")
    h1.modify_network("10.77.0.0/24", host="h1")
    yield made
    for service in made.values():
        service.db.dispose()


def _vpn(service: NetconService) -> tuple[str, int]:
    """Where `vpn list` says alpha's clients connect, and how many configurations it
    counts out of date."""
    (view,) = service.list_vpns()
    return f"{view.public_address}:{view.public_port}", view.out_of_date


def _users(service: NetconService) -> dict[str, tuple[str, str | None, str | None]]:
    return {u.user: (u.state, u.made_for, u.host) for u in service.list_vpn_users("alpha")}


def test_the_address_is_the_serving_hosts_and_follows_the_network(
    hosts: dict[str, NetconService],
) -> None:
    h1, h2 = hosts["h1"], hosts["h2"]
    # Both hosts, and any other reader, see where clients connect: h1's own address.
    assert _vpn(h1) == ("198.51.100.11:11940", 0)
    assert _vpn(h2) == ("198.51.100.11:11940", 0)
    assert h2.get_network("10.77.0.0/24").vpn_public_address == "198.51.100.11"

    ovpn = h1.vpn_client_config("alpha", "alice")
    assert "remote 198.51.100.11 11940\n" in ovpn
    assert _users(h2) == {"alice": ("active", "198.51.100.11:11940", "h1")}

    h2.modify_network("10.77.0.0/24", host="h2")

    # The address went with the network; alice's configuration no longer reaches it.
    assert _vpn(h1) == ("198.51.100.12:11940", 1)
    assert h1.get_network("10.77.0.0/24").vpn_public_address == "198.51.100.12"
    assert _users(h1)["alice"] == ("out of date", "198.51.100.11:11940", "h1")
    # The certificates live with the VPN's host: h1 may no longer issue them.
    with pytest.raises(Conflict, match="the VPN of alpha lives on host h2; run this there"):
        h1.vpn_client_config("alpha", "bob")

    again = h2.vpn_client_config("alpha", "alice")
    assert "remote 198.51.100.12 11940\n" in again
    assert again[again.index("<ca>") :] != ovpn[ovpn.index("<ca>") :]  # h2's own authority
    assert _users(h1)["alice"] == ("active", "198.51.100.12:11940", "h2")
    assert _vpn(h1) == ("198.51.100.12:11940", 0)


def test_a_host_says_a_new_address_when_it_heartbeats(
    hosts: dict[str, NetconService], tmp_path: Path
) -> None:
    h1, h2 = hosts["h1"], hosts["h2"]
    h1.vpn_client_config("alpha", "alice")
    # h1 is given another vpn_ip (its netcon.toml edited, its agent restarted).
    moved = NetconService(h1.db.url, h1.settings.replace(vpn_ip="198.51.100.21"), actor="admin")
    try:
        moved.heartbeat()
    finally:
        moved.db.dispose()
    assert _vpn(h2) == ("198.51.100.21:11940", 1)
    assert _users(h2)["alice"][0] == "out of date"


def test_a_revoked_user_is_no_longer_counted(hosts: dict[str, NetconService]) -> None:
    h1, h2 = hosts["h1"], hosts["h2"]
    h1.vpn_client_config("alpha", "alice")
    h1.vpn_client_config("alpha", "bob")
    h1.revoke_vpn_user("alpha", "bob")
    h2.modify_network("10.77.0.0/24", host="h2")
    assert _vpn(h1)[1] == 1
    states = [(u.user, u.state) for u in h1.list_vpn_users("alpha")]
    assert states == [("alice", "out of date"), ("bob", "revoked")]


def test_the_command_line_lists_users_and_what_is_out_of_date(
    hosts: dict[str, NetconService], tmp_path: Path
) -> None:
    h1, h2 = hosts["h1"], hosts["h2"]
    h1.vpn_client_config("alpha", "alice")
    h2.modify_network("10.77.0.0/24", host="h2")
    config = tmp_path / "xdg" / "netcon"
    config.mkdir(parents=True)
    (config / "netcon.toml").write_text(f'host = "console"\nstate_dir = "{tmp_path / "c"}"\n')

    def netcon(*args: str) -> str:
        result = subprocess.run(
            [sys.executable, "-m", "core.cli", *args, "--db", h1.db.url],
            capture_output=True,
            text=True,
            env={**os.environ, "XDG_CONFIG_HOME": str(tmp_path / "xdg")},
            timeout=60,
            check=False,
        )
        assert result.returncode == 0, result.stderr
        return result.stdout

    (listed,) = json.loads(netcon("vpn", "list", "--json"))
    assert listed["endpoint"] == "198.51.100.12:11940" and listed["out_of_date"] == 1
    (user,) = json.loads(netcon("vpn", "users", "alpha", "--json"))
    assert user["user"] == "alice" and user["state"] == "out of date"
    assert user["made_for"] == "198.51.100.11:11940" and user["host"] == "h1"
    table = netcon("vpn", "users", "alpha")
    assert "out of date" in table and "198.51.100.11:11940" in table
    said = {h["name"]: h["vpn_ip"] for h in json.loads(netcon("host", "list", "--json"))}
    assert said == ADDRESSES


def test_a_single_host_shows_its_own_address_before_any_apply(tmp_path: Path) -> None:
    # One host, no agent and no apply yet: it registered itself when its network was
    # placed on it, with its address.
    service = NetconService(
        f"sqlite:///{tmp_path / 'one.db'}",
        load_settings([], host="solo", vpn_ip="198.51.100.7", state_dir=str(tmp_path / "s")),
        actor="admin",
    )
    service.create_networks("10.78.0.0/24", 1, 256, 178, 11941)
    service.create_project("beta")
    service.launch_instance("beta", "b1")
    network = service.get_network("10.78.0.0/24")
    assert (network.host, network.vpn_public_address) == ("solo", "198.51.100.7")
    assert _vpn(service) == ("198.51.100.7:11941", 0)
    service.db.dispose()
