"""OpenVPN configuration text: the server's file and a client's single ``.ovpn``."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from core.errors import Conflict
from core.linux.vpn.spec import VpnSpec

if TYPE_CHECKING:
    # Only types here: the PKI's cryptography is imported where keys are made.
    from core.linux.vpn.pki import ClientFiles, ProjectPki

KEEPALIVE = "10 60"


def server_config(spec: VpnSpec, pki: ProjectPki, management_socket: Path) -> str:
    lines = [
        f"# netcon VPN of project {spec.project} (network {spec.cidr}); rewritten on start.",
        "mode server",
        "tls-server",
        "proto udp",
    ]
    if spec.public_address:
        lines.append(f"local {spec.public_address}")
    lines += [
        f"port {spec.public_port}",
        f"dev {spec.tap}",
        "dev-type tap",
        # The tap is made and put in the bridge by netcon before OpenVPN starts, so
        # OpenVPN must neither configure it nor take it down on a restart.
        f"server-bridge {spec.gateway} {spec.netmask} {spec.pool_start} {spec.pool_end}",
        f"ca {pki.ca_cert_path}",
        f"cert {pki.server_cert_path}",
        f"key {pki.server_key_path}",
        "dh none",
        f"tls-crypt {pki.tls_crypt_path}",
        # Re-read on every new connection, so a revocation needs no restart.
        f"crl-verify {pki.crl_path}",
        # A server certificate of this CA must not be usable as a client's.
        "remote-cert-tls client",
        f"keepalive {KEEPALIVE}",
        "persist-key",
        "persist-tun",
        f"management {management_socket} unix",
        # 2 still logs refused certificates; 3 would log every probe of `vpn list`.
        "verb 2",
    ]
    return "\n".join(lines) + "\n"


def client_config(spec: VpnSpec, files: ClientFiles) -> str:
    from core.linux.vpn.pki import server_common_name

    if not spec.public_address:
        raise Conflict(
            "network",
            f"{spec.cidr} has no VPN public address for clients to reach; set vpn_ip",
        )
    return (
        f"# netcon VPN of project {spec.project}: user {files.user}\n"
        "client\n"
        "dev tap\n"
        "proto udp\n"
        f"remote {spec.public_address} {spec.public_port}\n"
        "nobind\n"
        "persist-key\n"
        "persist-tun\n"
        "remote-cert-tls server\n"
        f"verify-x509-name {server_common_name(spec.project)} name\n"
        "verb 3\n"
        f"<ca>\n{files.ca.strip()}\n</ca>\n"
        f"<cert>\n{files.cert.strip()}\n</cert>\n"
        f"<key>\n{files.key.strip()}\n</key>\n"
        f"<tls-crypt>\n{files.tls_crypt.strip()}\n</tls-crypt>\n"
    )
