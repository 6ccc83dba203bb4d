"""The OpenVPN server for real, from hand-made parameters (no database)."""

from __future__ import annotations

from pathlib import Path

from core.linux.vpn import server
from core.linux.vpn.render import client_config
from core.linux.vpn.spec import VpnSpec, vpn_spec
from tests.vpn.lab import PUBLIC_HOST, Lab, wait_for


def _spec(lab: Lab, project: str = "alpha", port: int = 1194) -> VpnSpec:
    return vpn_spec(
        project=project,
        network_id=1,
        cidr=lab.cidr,
        bridge=lab.bridge,
        segment=lab.vlan,
        public_address=PUBLIC_HOST,
        public_port=port,
        private_address="10.77.0.2",
        gateway=lab.gateway,
        netmask="255.255.255.0",
        clients=5,
    )


def test_client_reaches_instance_through_vpn(lab: Lab, state_dir: Path) -> None:
    spec = _spec(lab)
    files = server.ServerFiles(state_dir, "alpha", lab.host)
    server.start(files, spec)
    try:
        assert files.state() == "up"
        client = lab.start_client("alice", client_config(spec, files.pki.client("alice")))
        wait_for(client.connected, "alice's tunnel")
        assert lab.http_get_from_remote() == "hello from the instance\n"
    finally:
        server.stop(files)
    assert files.state() == "down"
