"""A certificate authority per project: server and client certificates, revocation list.

Everything lives in the project's VPN directory (0700) as PEM files (0600). Keys are
EC P-256: small, fast to make, and accepted by OpenVPN 2.6 with ``dh none``.

Layout of ``<state_dir>/vpn/<project>/``::

    ca.key ca.crt crl.pem tls-crypt.key server.key server.crt
    clients/<user>.key clients/<user>.crt
    revoked/<user>-<serial>.crt       (kept for the record; their keys are deleted)
"""

from __future__ import annotations

import os
import secrets
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from core import validate
from core.errors import Conflict, NotFound
from core.linux.vpn.files import locked, private_dir, write_private

CA_LIFETIME = timedelta(days=3650)
CERT_LIFETIME = timedelta(days=825)
# OpenVPN refuses every client once the CRL's nextUpdate has passed, and nothing here
# re-signs it on a timer; so the list is valid as long as the CA, and re-signed on
# every revocation and on a server start once half of that has passed.
CRL_LIFETIME = CA_LIFETIME
# Certificates are valid from a little in the past so a client with a slow clock works.
CLOCK_SKEW = timedelta(minutes=5)

TLS_CRYPT_BYTES = 256  # OpenVPN's 2048-bit static key: 16 lines of 16 bytes


def server_common_name(project: str) -> str:
    return f"netcon-vpn-{project}"


def tls_crypt_key_text(key: bytes) -> str:
    """The OpenVPN static key V1 format that ``openvpn --genkey tls-crypt`` writes."""
    if len(key) != TLS_CRYPT_BYTES:
        raise ValueError("an OpenVPN static key has 256 bytes")
    lines = [key[i : i + 16].hex() for i in range(0, TLS_CRYPT_BYTES, 16)]
    return (
        "#\n# 2048 bit OpenVPN static key\n#\n"
        "-----BEGIN OpenVPN Static key V1-----\n"
        + "\n".join(lines)
        + "\n-----END OpenVPN Static key V1-----\n"
    )


def _now() -> datetime:
    return datetime.now(UTC)


def _new_key() -> ec.EllipticCurvePrivateKey:
    return ec.generate_private_key(ec.SECP256R1())


def _key_pem(key: ec.EllipticCurvePrivateKey) -> bytes:
    return key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )


def _cert_pem(cert: x509.Certificate) -> bytes:
    return cert.public_bytes(serialization.Encoding.PEM)


@dataclass(frozen=True)
class ClientFiles:
    user: str
    ca: str
    cert: str
    key: str
    tls_crypt: str


class ProjectPki:
    """The certificate authority of one project, stored under ``directory``."""

    def __init__(self, directory: Path, project: str) -> None:
        self.directory = directory
        self.project = project

    # Paths other modules (the server configuration) refer to.
    @property
    def ca_cert_path(self) -> Path:
        return self.directory / "ca.crt"

    @property
    def ca_key_path(self) -> Path:
        return self.directory / "ca.key"

    @property
    def crl_path(self) -> Path:
        return self.directory / "crl.pem"

    @property
    def tls_crypt_path(self) -> Path:
        return self.directory / "tls-crypt.key"

    @property
    def server_cert_path(self) -> Path:
        return self.directory / "server.crt"

    @property
    def server_key_path(self) -> Path:
        return self.directory / "server.key"

    @property
    def clients_dir(self) -> Path:
        return self.directory / "clients"

    @property
    def revoked_dir(self) -> Path:
        return self.directory / "revoked"

    # --- authority -------------------------------------------------------------------

    def ensure_server(self) -> None:
        """Make the CA, CRL, tls-crypt key and server certificate that are missing."""
        with locked(self.directory):
            self._ensure_ca()
            crl = x509.load_pem_x509_crl(self.crl_path.read_bytes())
            next_update = crl.next_update_utc
            if next_update is None or next_update - _now() < CRL_LIFETIME / 2:
                self._write_crl(list(crl))
            if not self.server_cert_path.exists() or not self.server_key_path.exists():
                key = _new_key()
                cert = self._sign(
                    key.public_key(),
                    server_common_name(self.project),
                    ExtendedKeyUsageOID.SERVER_AUTH,
                )
                write_private(self.server_key_path, _key_pem(key))
                write_private(self.server_cert_path, _cert_pem(cert))

    def _ensure_ca(self) -> None:
        private_dir(self.directory)
        if not self.ca_key_path.exists() or not self.ca_cert_path.exists():
            key = _new_key()
            name = x509.Name(
                [
                    x509.NameAttribute(NameOID.ORGANIZATION_NAME, "netcon"),
                    x509.NameAttribute(NameOID.COMMON_NAME, f"netcon project {self.project} CA"),
                ]
            )
            now = _now()
            cert = (
                x509.CertificateBuilder()
                .subject_name(name)
                .issuer_name(name)
                .public_key(key.public_key())
                .serial_number(x509.random_serial_number())
                .not_valid_before(now - CLOCK_SKEW)
                .not_valid_after(now + CA_LIFETIME)
                .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
                .add_extension(
                    x509.KeyUsage(
                        digital_signature=True,
                        content_commitment=False,
                        key_encipherment=False,
                        data_encipherment=False,
                        key_agreement=False,
                        key_cert_sign=True,
                        crl_sign=True,
                        encipher_only=False,
                        decipher_only=False,
                    ),
                    critical=True,
                )
                .add_extension(
                    x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False
                )
                .sign(key, hashes.SHA256())
            )
            # Key first: a CA certificate without its key would be useless and stuck.
            write_private(self.ca_key_path, _key_pem(key))
            write_private(self.ca_cert_path, _cert_pem(cert))
            for stale in (self.crl_path, self.server_cert_path, self.server_key_path):
                stale.unlink(missing_ok=True)
        if not self.crl_path.exists():
            self._write_crl([])
        if not self.tls_crypt_path.exists():
            write_private(self.tls_crypt_path, tls_crypt_key_text(secrets.token_bytes(256)))

    def _ca(self) -> tuple[ec.EllipticCurvePrivateKey, x509.Certificate]:
        key = serialization.load_pem_private_key(self.ca_key_path.read_bytes(), password=None)
        assert isinstance(key, ec.EllipticCurvePrivateKey)
        cert = x509.load_pem_x509_certificate(self.ca_cert_path.read_bytes())
        return key, cert

    def _sign(
        self, public_key: ec.EllipticCurvePublicKey, common_name: str, usage: x509.ObjectIdentifier
    ) -> x509.Certificate:
        ca_key, ca_cert = self._ca()
        now = _now()
        return (
            x509.CertificateBuilder()
            .subject_name(
                x509.Name(
                    [
                        x509.NameAttribute(NameOID.ORGANIZATION_NAME, "netcon"),
                        x509.NameAttribute(NameOID.ORGANIZATIONAL_UNIT_NAME, self.project),
                        x509.NameAttribute(NameOID.COMMON_NAME, common_name),
                    ]
                )
            )
            .issuer_name(ca_cert.subject)
            .public_key(public_key)
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - CLOCK_SKEW)
            .not_valid_after(min(now + CERT_LIFETIME, ca_cert.not_valid_after_utc))
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .add_extension(
                x509.KeyUsage(
                    digital_signature=True,
                    content_commitment=False,
                    key_encipherment=False,
                    data_encipherment=False,
                    key_agreement=True,
                    key_cert_sign=False,
                    crl_sign=False,
                    encipher_only=False,
                    decipher_only=False,
                ),
                critical=True,
            )
            .add_extension(x509.ExtendedKeyUsage([usage]), critical=False)
            .add_extension(
                x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()),
                critical=False,
            )
            .sign(ca_key, hashes.SHA256())
        )

    def _write_crl(self, revoked: list[x509.RevokedCertificate]) -> None:
        ca_key, ca_cert = self._ca()
        now = _now()
        builder = (
            x509.CertificateRevocationListBuilder()
            .issuer_name(ca_cert.subject)
            .last_update(now - CLOCK_SKEW)
            .next_update(now + CRL_LIFETIME)
        )
        for entry in revoked:
            builder = builder.add_revoked_certificate(entry)
        crl = builder.sign(ca_key, hashes.SHA256())
        write_private(self.crl_path, crl.public_bytes(serialization.Encoding.PEM))

    def revoked_serials(self) -> set[int]:
        if not self.crl_path.exists():
            return set()
        crl = x509.load_pem_x509_crl(self.crl_path.read_bytes())
        return {entry.serial_number for entry in crl}

    # --- clients ---------------------------------------------------------------------

    def _client_paths(self, user: str) -> tuple[Path, Path]:
        return self.clients_dir / f"{user}.crt", self.clients_dir / f"{user}.key"

    def client(self, user: str) -> ClientFiles:
        """The user's current certificate, issuing one if the user has none (or it was
        revoked: revocation retires a certificate, not the user)."""
        user = validate.name("user", user)
        with locked(self.directory):
            self._ensure_ca()
            cert_path, key_path = self._client_paths(user)
            if not cert_path.exists() or not key_path.exists():
                private_dir(self.clients_dir)
                key = _new_key()
                cert = self._sign(key.public_key(), user, ExtendedKeyUsageOID.CLIENT_AUTH)
                write_private(key_path, _key_pem(key))
                write_private(cert_path, _cert_pem(cert))
            return ClientFiles(
                user=user,
                ca=self.ca_cert_path.read_text(),
                cert=cert_path.read_text(),
                key=key_path.read_text(),
                tls_crypt=self.tls_crypt_path.read_text(),
            )

    def users(self) -> list[str]:
        if not self.clients_dir.is_dir():
            return []
        return sorted(p.stem for p in self.clients_dir.glob("*.crt"))

    def revoke(self, user: str) -> int:
        """Put the user's certificate on the CRL; returns its serial number."""
        user = validate.name("user", user)
        with locked(self.directory):
            cert_path, key_path = self._client_paths(user)
            if not self.ca_cert_path.exists() or not cert_path.exists():
                raise NotFound("user", f"{user!r} has no certificate in project {self.project}")
            cert = x509.load_pem_x509_certificate(cert_path.read_bytes())
            if cert.serial_number in self.revoked_serials():
                raise Conflict("user", f"{user!r} is already revoked")
            existing = list(x509.load_pem_x509_crl(self.crl_path.read_bytes()))
            entry = (
                x509.RevokedCertificateBuilder()
                .serial_number(cert.serial_number)
                .revocation_date(_now())
                .build()
            )
            # The CRL first: once it is written the server refuses the certificate,
            # whatever happens to the files below.
            self._write_crl([*existing, entry])
            private_dir(self.revoked_dir)
            os.replace(cert_path, self.revoked_dir / f"{user}-{cert.serial_number:x}.crt")
            key_path.unlink(missing_ok=True)
            return cert.serial_number
