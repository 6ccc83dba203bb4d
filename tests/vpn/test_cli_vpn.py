"""`netcon vpn ...` through the real command line, against namespaces the test makes."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from core.linux.vpn import server
from core.linux.vpn.server import ServerFiles
from tests.vpn.lab import PUBLIC_HOST, Lab, wait_for


class Netcon:
    def __init__(self, tmp_path: Path, state_dir: Path) -> None:
        config = tmp_path / "xdg" / "netcon"
        config.mkdir(parents=True)
        (config / "netcon.toml").write_text(
            f'state_dir = "{state_dir}"\nhost = "nc-cli-host"\n'
            f'vpn_ip = "{PUBLIC_HOST}"\ncnt_vpn_clients = 4\n'
        )
        self.env = {**os.environ, "XDG_CONFIG_HOME": str(tmp_path / "xdg")}
        self.db = f"sqlite:///{tmp_path / 'netcon.db'}"
        self.state_dir = state_dir

    def __call__(self, *args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-c", "import sys; from core.cli import main; sys.exit(main())", *args,
             "--db", self.db],
            capture_output=True, text=True, env=self.env, timeout=60,
        )  # fmt: skip

    def ok(self, *args: str) -> str:
        result = self(*args)
        assert result.returncode == 0, result.stderr
        return result.stdout


@pytest.fixture
def netcon(tmp_path: Path, state_dir: Path) -> Iterator[Netcon]:
    cli = Netcon(tmp_path, state_dir)
    cli.ok("init")
    cli.ok("network", "create", "10.77.0.0/16", "1", "256", "177", "11950")
    cli.ok("project", "create", "alpha")
    cli.ok("project", "create", "idle")
    cli.ok("instance", "launch", "--project", "alpha", "web1")
    yield cli
    for record in state_dir.glob("*/vpn/*/run.json"):
        namespace = json.loads(record.read_text())["netns"]
        server.stop(ServerFiles(state_dir, record.parent.name, namespace))


def _ca(ovpn: str) -> str:
    """The authority a client configuration trusts."""
    return ovpn.split("<ca>", 1)[1].split("</ca>", 1)[0]


def _state(netcon: Netcon, *netns: str) -> str:
    rows = json.loads(netcon.ok("vpn", "list", "--json", *netns))
    return {row["project"]: row["state"] for row in rows}["alpha"]


def test_vpn_commands_end_to_end(netcon: Netcon, lab: Lab) -> None:
    assert _state(netcon) == "off"
    out = netcon.ok("vpn", "run", "alpha", "--netns", lab.host)
    assert out.startswith("start VPN of project alpha on udp 192.0.2.1:11950")
    assert _state(netcon, "--netns", lab.host) == "up"
    # The real host runs no server for alpha; only the rehearsal namespace does.
    assert _state(netcon) == "down"
    assert netcon.ok("vpn", "run", "alpha", "--netns", lab.host).startswith("nothing to do")
    listing = netcon.ok("vpn", "list", "--netns", lab.host)
    assert "alpha" in listing and "192.0.2.1:11950" in listing and "up" in listing

    ovpn = netcon.ok("vpn", "client-config", "alpha", "alice", "--netns", lab.host)
    assert ovpn.startswith("# netcon VPN of project alpha: user alice\n")
    # The rehearsal has an authority of its own: the real host's for alpha is another,
    # in its own place, and signs other configurations.
    assert (netcon.state_dir / f"netns-{lab.host}" / "vpn-ca" / "alpha" / "ca.crt").exists()
    assert not (netcon.state_dir / "vpn" / "alpha").exists()
    on_host = netcon.ok("vpn", "client-config", "alpha", "alice")
    assert (netcon.state_dir / "vpn" / "alpha" / "ca.crt").exists()
    assert _ca(on_host) != _ca(ovpn)
    assert _ca(netcon.ok("vpn", "client-config", "alpha", "alice", "--netns", lab.host)) == _ca(
        ovpn
    )
    client = lab.start_client("alice", ovpn)
    wait_for(client.connected, "alice's tunnel")
    assert lab.http_get_from_remote() == "hello from the instance\n"
    lab.stop_client(client)

    users = json.loads(netcon.ok("vpn", "users", "alpha", "--json", "--netns", lab.host))
    assert [u["user"] for u in users] == ["alice"]
    revoked = netcon.ok("vpn", "revoke", "alpha", "alice", "--netns", lab.host)
    assert revoked.startswith("revoked alice of project alpha (serial ")
    for output in (out, listing, revoked):
        assert "PRIVATE KEY" not in output

    stopped = netcon.ok("vpn", "stop", "alpha", "--netns", lab.host)
    assert stopped == "stop VPN of project alpha (the database no longer wants it)\n"
    assert _state(netcon, "--netns", lab.host) == "off"


def test_a_server_that_cannot_start_fails_in_one_line_and_stays_pending(
    netcon: Netcon, lab: Lab
) -> None:
    files = ServerFiles(netcon.state_dir, "alpha", lab.host)
    files.pki.ensure_server()
    files.pki.server_key_path.write_text("not a key\n")

    result = netcon("vpn", "run", "alpha", "--netns", lab.host)

    assert result.returncode == 1
    assert result.stdout == ""
    assert result.stderr.startswith("netcon: openvpn for project alpha")
    assert "pending on host nc-cli-host" in result.stderr
    assert result.stderr.count("\n") == 1
    assert _state(netcon, "--netns", lab.host) == "down"
    host = {h["name"]: h for h in json.loads(netcon.ok("host", "list", "--json"))}["nc-cli-host"]
    assert host["pending"] > 0

    # A good key again: the next apply of the VPN starts the server still wanted.
    files.pki.server_key_path.unlink()
    files.pki.server_cert_path.unlink()
    out = netcon.ok("vpn", "run", "alpha", "--netns", lab.host)
    assert out.startswith("start VPN of project alpha")
    assert _state(netcon, "--netns", lab.host) == "up"


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("vpn", "run", "ghost"), "netcon: project: no project named 'ghost'\n"),
        (("vpn", "run", "idle"), "netcon: project: idle has no VLAN network"),
        (("vpn", "client-config", "alpha", "../root"), "netcon: user: '../root' must be"),
        (("vpn", "revoke", "alpha", "nobody"), "netcon: user: 'nobody' has no certificate"),
        (("vpn", "run", "alpha", "--netns", "nc-none-0000"), "netcon: --netns: network"),
    ],
)
def test_bad_input_is_one_line_and_exit_2(
    netcon: Netcon, args: tuple[str, ...], message: str
) -> None:
    result = netcon(*args)
    assert result.returncode == 2
    assert result.stderr.startswith(message)
    assert result.stderr.count("\n") == 1
    assert result.stdout == ""
    assert _state(netcon) == "off"
    assert not (netcon.state_dir / "vpn" / "alpha" / "run.json").exists()
