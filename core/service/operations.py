"""Read-outs for operators (VPNs, hosts, audit) and the DHCP server's lease events."""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import func, select

from core import validate
from core.errors import InvalidInput, NotFound
from core.service.base import ServiceBase
from core.store.models import AuditEvent, FixedIP, FloatingIP, Host, Network
from core.views import AuditView, HostView, VpnView
from core.vpn.state import vpn_state

DHCP_ACTIONS = ("add", "old", "del")


class OperationsService(ServiceBase):
    def list_vpns(self, netns: str | None = None) -> list[VpnView]:
        """Every VLAN network's VPN endpoint, as `vpn list` prints it.

        The state is probed where the servers run: this host, or ``netns`` when the
        host is being rehearsed in a namespace.
        """
        where = netns if netns is not None else self.settings.netns
        with self.db.read() as session:
            networks = session.scalars(
                select(Network).where(Network.manager == "vlan").order_by(Network.vlan)
            )
            return [
                VpnView(
                    project=n.project.name if n.project else None,
                    network=n.cidr,
                    public_address=n.vpn_public_address or self.settings.vpn_ip,
                    public_port=n.vpn_public_port,
                    private_address=n.vpn_private_address,
                    state=vpn_state(self.settings, n, where),
                )
                for n in networks
            ]

    def list_hosts(self) -> list[HostView]:
        with self.db.read() as session:
            networks: dict[str, int] = {
                host: count
                for host, count in session.execute(
                    select(Network.host, func.count(Network.id)).group_by(Network.host)
                )
                if host is not None
            }
            floating: dict[str, int] = dict(
                session.execute(
                    select(FloatingIP.host, func.count(FloatingIP.id)).group_by(FloatingIP.host)
                ).all()
            )
            cutoff = self.clock() - timedelta(seconds=self.settings.host_down_time)
            known = {h.name: h for h in session.scalars(select(Host).order_by(Host.name))}
            names = sorted(set(known) | set(networks) | set(floating))
            return [
                HostView(
                    name=name,
                    role=known[name].role if name in known else "network",
                    last_heartbeat=known[name].last_heartbeat if name in known else None,
                    alive=bool(
                        name in known
                        and known[name].last_heartbeat is not None
                        and known[name].last_heartbeat >= cutoff  # type: ignore[operator]
                    ),
                    networks=networks.get(name, 0),
                    floating_ips=floating.get(name, 0),
                )
                for name in names
            ]

    def list_audit(self, limit: int = 200, offset: int = 0) -> list[AuditView]:
        with self.db.read() as session:
            query = (
                select(AuditEvent)
                .order_by(AuditEvent.id.desc())
                .offset(max(0, offset))
                .limit(max(0, limit))
            )
            return [
                AuditView(
                    id=e.id,
                    at=e.at,
                    actor=e.actor,
                    action=e.action,
                    target=e.target,
                    before=e.before,
                    after=e.after,
                )
                for e in session.scalars(query)
            ]

    def dhcp_event(self, action: str, mac: str, address: str, hostname: str | None = None) -> bool:
        """A lease event from dnsmasq's ``--dhcp-script``; returns whether state changed.

        ``add``/``old`` mark the address leased; ``del`` clears the lease and, for an
        address whose instance is gone, makes it free again.
        """
        if action not in DHCP_ACTIONS:
            raise InvalidInput("action", f"{action!r} must be one of {', '.join(DHCP_ACTIONS)}")
        mac = validate.mac("mac", mac)
        text = str(validate.ipv4_address("address", address))
        with self.db.read() as session:
            fixed = session.scalars(select(FixedIP).where(FixedIP.address == text)).first()
            if fixed is None:
                raise NotFound("address", f"{text} is not a fixed IP of any network")
            if fixed.mac != mac:
                # A lease for a MAC we did not hand this address to (a stale lease after
                # the address moved on): nothing of ours to change.
                return False
            wanted_leased = action != "del"
            if fixed.leased == wanted_leased:
                return False
        with self._change(f"dhcp.{action}", text) as (session, audit):
            fixed = session.scalars(
                select(FixedIP).where(FixedIP.address == text).with_for_update()
            ).one()
            if fixed.mac != mac or fixed.leased == wanted_leased:
                audit.skip = True  # changed under us since the read: nothing to record
                return False
            audit.before = {"leased": fixed.leased}
            fixed.leased = wanted_leased
            if not wanted_leased and fixed.instance_id is None:
                fixed.mac = None
                fixed.released_at = None
            audit.after = {"leased": fixed.leased, "mac": mac}
            audit.network_ids.add(fixed.network_id)
        return True
