"""Project VPNs as service calls; the work is in :mod:`core.vpn.service`."""

from __future__ import annotations

from typing import TYPE_CHECKING, cast

from core.service.base import ServiceBase
from core.views import VpnUserView

if TYPE_CHECKING:
    from core.service import NetconService


class VpnService(ServiceBase):
    # Imported on use: the VPN layer pulls in the PKI, which most callers never need.

    def run_vpn(self, project: str, netns: str | None = None) -> list[str]:
        """Start the project's VPN (and want it running from now on); returns the steps."""
        from core.vpn import service

        return service.run_vpn(self._whole(), project, netns)

    def stop_vpn(self, project: str, netns: str | None = None) -> list[str]:
        from core.vpn import service

        return service.stop_vpn(self._whole(), project, netns)

    def spawn_vpns(self, netns: str | None = None) -> list[str]:
        """Run every VLAN project's VPN, all or none."""
        from core.vpn import service

        return service.spawn_vpns(self._whole(), netns)

    def vpn_client_config(self, project: str, user: str) -> str:
        """Issue (or reuse) the user's certificate; a self-contained .ovpn with its key."""
        from core.vpn import service

        return service.client_config(self._whole(), project, user)

    def revoke_vpn_user(self, project: str, user: str) -> int:
        """Put the user's certificate on the project's CRL; returns its serial."""
        from core.vpn import service

        return service.revoke(self._whole(), project, user)

    def list_vpn_users(self, project: str) -> list[VpnUserView]:
        """The users of the project's VPN: issued certificates, then revoked ones."""
        from cryptography import x509

        from core.vpn.pki import ProjectPki
        from core.vpn.server import vpn_root

        with self.db.read() as session:
            name = self._project(session, project).name
        pki = ProjectPki(vpn_root(self.settings.state_dir) / name, name)
        users = []
        for user in pki.users():
            cert = x509.load_pem_x509_certificate((pki.clients_dir / f"{user}.crt").read_bytes())
            users.append(VpnUserView(name, user, "active", f"{cert.serial_number:x}"))
        if pki.revoked_dir.is_dir():
            # Kept for the record as <user>-<serial>.crt; a hex serial holds no '-'.
            for path in sorted(pki.revoked_dir.glob("*.crt")):
                user, _, serial = path.stem.rpartition("-")
                users.append(VpnUserView(name, user, "revoked", serial))
        return users

    def _whole(self) -> NetconService:
        return cast("NetconService", self)
