"""Project VPNs as service calls; the work is in :mod:`core.vpn.service`."""

from __future__ import annotations

from typing import TYPE_CHECKING, cast

from core.service.base import ServiceBase

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

    def _whole(self) -> NetconService:
        return cast("NetconService", self)
