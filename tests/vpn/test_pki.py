"""The per-project certificate authority and the configuration text (no root needed)."""

from __future__ import annotations

import re
import stat
import subprocess
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.x509.oid import ExtendedKeyUsageOID

from core.errors import Conflict, InvalidInput, NotFound
from core.linux.vpn.pki import ProjectPki, server_common_name, tls_crypt_key_text
from core.linux.vpn.render import client_config, server_config
from core.linux.vpn.spec import DEFAULT_VPN_CLIENTS, client_pool, tap_name, vpn_spec


@pytest.fixture
def pki(state_dir: Path) -> ProjectPki:
    return ProjectPki(state_dir / "vpn" / "alpha", "alpha")


def _eku(path: Path) -> list[x509.ObjectIdentifier]:
    cert = x509.load_pem_x509_certificate(path.read_bytes())
    return list(cert.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value)


def test_files_are_private(pki: ProjectPki, state_dir: Path) -> None:
    pki.ensure_server()
    pki.client("alice")
    for path in (state_dir / "vpn").rglob("*"):
        mode = stat.S_IMODE(path.stat().st_mode)
        assert mode == (0o700 if path.is_dir() else 0o600), path


def test_certificates_chain_to_the_project_ca_with_the_right_usage(pki: ProjectPki) -> None:
    pki.ensure_server()
    pki.client("alice")
    alice = pki.clients_dir / "alice.crt"
    assert _eku(pki.server_cert_path) == [ExtendedKeyUsageOID.SERVER_AUTH]
    assert _eku(alice) == [ExtendedKeyUsageOID.CLIENT_AUTH]
    server = x509.load_pem_x509_certificate(pki.server_cert_path.read_bytes())
    cn = server.subject.get_attributes_for_oid(x509.oid.NameOID.COMMON_NAME)[0].value
    assert cn == server_common_name("alpha")
    # An independent verifier agrees: both chain to this project's CA.
    result = subprocess.run(
        [
            "openssl",
            "verify",
            "-CAfile",
            str(pki.ca_cert_path),
            str(pki.server_cert_path),
            str(alice),
        ],
        capture_output=True,
        text=True,
    )
    assert result.returncode == 0, result.stderr


def test_each_project_has_its_own_ca(state_dir: Path) -> None:
    alpha = ProjectPki(state_dir / "vpn" / "alpha", "alpha")
    beta = ProjectPki(state_dir / "vpn" / "beta", "beta")
    alpha.ensure_server()
    beta.client("bob")
    result = subprocess.run(
        [
            "openssl",
            "verify",
            "-CAfile",
            str(alpha.ca_cert_path),
            str(beta.clients_dir / "bob.crt"),
        ],
        capture_output=True,
        text=True,
    )
    assert result.returncode != 0


def test_ensure_server_is_idempotent(pki: ProjectPki) -> None:
    pki.ensure_server()
    before = {p.name: p.read_bytes() for p in pki.directory.iterdir() if p.is_file()}
    pki.ensure_server()
    after = {p.name: p.read_bytes() for p in pki.directory.iterdir() if p.is_file()}
    assert before == after


def test_client_is_reused_until_revoked(pki: ProjectPki) -> None:
    first = pki.client("alice")
    assert pki.client("alice") == first
    serial = pki.revoke("alice")
    assert serial in pki.revoked_serials()
    assert not (pki.clients_dir / "alice.key").exists()
    renewed = pki.client("alice")
    assert renewed.cert != first.cert and renewed.key != first.key
    with pytest.raises(NotFound, match="user: 'carol' has no certificate in project alpha"):
        pki.revoke("carol")


def test_revoke_twice_is_refused(pki: ProjectPki) -> None:
    pki.client("alice")
    pki.revoke("alice")
    with pytest.raises(NotFound):
        pki.revoke("alice")
    # A revoked certificate file put back by hand is still recognised as revoked.
    revoked = next(pki.revoked_dir.iterdir())
    revoked.rename(pki.clients_dir / "alice.crt")
    (pki.clients_dir / "alice.key").write_text("x")
    with pytest.raises(Conflict, match="already revoked"):
        pki.revoke("alice")


@pytest.mark.parametrize("user", ["../x", "a/b", ".x", "", " alice", "x" * 64])
def test_unsafe_user_names(pki: ProjectPki, user: str) -> None:
    with pytest.raises(InvalidInput, match="^user: "):
        pki.client(user)
    assert not pki.directory.exists()


def test_tls_crypt_key_format(pki: ProjectPki) -> None:
    pki.ensure_server()
    text = pki.tls_crypt_path.read_text()
    body = text.split("-----BEGIN OpenVPN Static key V1-----\n")[1].split("\n-----END")[0]
    lines = body.splitlines()
    assert len(lines) == 16 and all(re.fullmatch(r"[0-9a-f]{32}", line) for line in lines)
    assert tls_crypt_key_text(bytes(range(256))).count("\n") == 4 + 16 + 1
    with pytest.raises(ValueError):
        tls_crypt_key_text(b"short")


def test_client_pool_is_the_top_of_the_subnet() -> None:
    assert client_pool("10.0.0.0/24", 5) == ("10.0.0.250", "10.0.0.254")
    assert client_pool("10.0.0.0/24", 1) == ("10.0.0.254", "10.0.0.254")
    assert client_pool("10.0.0.0/24", 0) == (f"10.0.0.{255 - DEFAULT_VPN_CLIENTS}", "10.0.0.254")
    # Never into the network, gateway or VPN addresses of a tiny subnet.
    assert client_pool("10.0.0.0/29", 50) == ("10.0.0.3", "10.0.0.6")
    with pytest.raises(Conflict):
        client_pool("10.0.0.0/30", 1)
    assert tap_name(16_777_215) == "tapvpn16777215" and len(tap_name(16_777_215)) <= 15


def test_configuration_text(pki: ProjectPki, state_dir: Path) -> None:
    spec = vpn_spec(
        project="alpha",
        network_id=1,
        cidr="10.0.0.0/24",
        bridge="br100",
        segment=100,
        public_address="192.0.2.1",
        public_port=1000,
        private_address="10.0.0.2",
        gateway="10.0.0.1",
        netmask="255.255.255.0",
        clients=5,
    )
    text = server_config(spec, pki, state_dir / "m.sock")
    for line in (
        "tls-server",
        "local 192.0.2.1",
        "port 1000",
        "dev tapvpn100",
        "server-bridge 10.0.0.1 255.255.255.0 10.0.0.250 10.0.0.254",
        "dh none",
        f"tls-crypt {pki.tls_crypt_path}",
        f"crl-verify {pki.crl_path}",
        "keepalive 10 60",
        "persist-tun",
    ):
        assert line in text.splitlines()
    ovpn = client_config(spec, pki.client("alice"))
    assert "remote 192.0.2.1 1000" in ovpn.splitlines()
    assert "verify-x509-name netcon-vpn-alpha name" in ovpn.splitlines()
    for tag in ("ca", "cert", "key", "tls-crypt"):
        assert ovpn.count(f"<{tag}>") == 1 and ovpn.count(f"</{tag}>") == 1
    # The user's own key, and no other.
    assert (pki.clients_dir / "alice.key").read_text().strip() in ovpn
    assert pki.ca_key_path.read_text().strip() not in ovpn
    assert pki.server_key_path.exists() is False or pki.server_key_path.read_text() not in ovpn
