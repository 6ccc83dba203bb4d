"""Read-outs for operators (VPNs, hosts, audit) and the DHCP server's lease events."""

from __future__ import annotations

import json
from datetime import timedelta

from sqlalchemy import Connection, func, select

from core import validate
from core.errors import InvalidInput
from core.service import vpnclients
from core.service.base import ChangeSet, ServiceBase
from core.store.leases import record_lease
from core.store.raw import RawDatabase
from core.store.schema import (
    audit_events,
    fixed_ips,
    floating_ips,
    host_changes,
    hosts,
    instances,
    networks,
    projects,
)
from core.views import AuditView, HostView, VpnView

DHCP_ACTIONS = ("add", "old", "del")


class OperationsService(ServiceBase):
    def list_vpns(self, netns: str | None = None) -> list[VpnView]:
        """Every VLAN network's VPN endpoint, as `vpn list` prints it.

        The state is probed where the servers run: this host, or ``netns`` when the
        host is being rehearsed in a namespace.
        """
        from core.linux.vpn.state import vpn_state

        where = netns if netns is not None else self.settings.netns
        with self.db.read() as connection:
            rows = connection.execute(
                select(networks, projects.c.name.label("project_name"))
                .outerjoin(projects, networks.c.project_id == projects.c.id)
                .where(networks.c.manager == "vlan")
                .order_by(networks.c.vlan)
            ).all()
            remote = {n.host for n in rows if n.host not in (None, self.settings.host)}
            owed = _networks_owed(connection, remote) if remote else set()
            addresses = vpnclients.host_addresses(connection, self.settings)
            handed_out = vpnclients.issued(
                connection, (n.project_id for n in rows if n.project_id is not None)
            )
        views = []
        for n in rows:
            now = vpnclients.endpoint(n, addresses)
            views.append(
                VpnView(
                    project=n.project_name,
                    network=n.cidr,
                    public_address=now.address,
                    public_port=n.vpn_public_port,
                    private_address=n.vpn_private_address,
                    state=vpn_state(self.settings, n, where, owed=(n.host, n.id) in owed),
                    out_of_date=sum(
                        1
                        for record in handed_out
                        if record.project_id == n.project_id and vpnclients.out_of_date(record, now)
                    ),
                )
            )
        return views

    def list_hosts(self) -> list[HostView]:
        with self.db.read() as connection:
            network_counts: dict[str, int] = {
                host: count
                for host, count in connection.execute(
                    select(networks.c.host, func.count(networks.c.id)).group_by(networks.c.host)
                )
                if host is not None
            }
            floating: dict[str, int] = dict(
                connection.execute(
                    select(floating_ips.c.host, func.count(floating_ips.c.id)).group_by(
                        floating_ips.c.host
                    )
                ).all()
            )
            known = {
                row.name: row for row in connection.execute(select(hosts).order_by(hosts.c.name))
            }
            serving: dict[str, int] = {
                host: count
                for host, count in connection.execute(
                    select(instances.c.host, func.count(func.distinct(instances.c.id)))
                    .join(fixed_ips, fixed_ips.c.instance_id == instances.c.id)
                    .join(networks, fixed_ips.c.network_id == networks.c.id)
                    .where(networks.c.multi_host.is_(True), instances.c.host.is_not(None))
                    .group_by(instances.c.host)
                )
            }
            pending: dict[str, int] = dict(
                connection.execute(
                    select(host_changes.c.host, func.count())
                    .select_from(host_changes)
                    .outerjoin(hosts, hosts.c.name == host_changes.c.host)
                    .where(
                        hosts.c.applied_change.is_(None)
                        | (host_changes.c.change_id > hosts.c.applied_change)
                    )
                    .group_by(host_changes.c.host)
                ).all()
            )
        cutoff = self.clock() - timedelta(seconds=self.settings.host_down_time)
        names = sorted(
            set(known) | set(network_counts) | set(floating) | set(pending) | set(serving)
        )
        views = []
        for name in names:
            row = known.get(name)
            beat = row.last_heartbeat if row is not None else None
            views.append(
                HostView(
                    name=name,
                    role=row.role if row is not None else "network",
                    last_heartbeat=beat,
                    alive=beat is not None and beat >= cutoff,
                    networks=network_counts.get(name, 0),
                    floating_ips=floating.get(name, 0),
                    pending=pending.get(name, 0),
                    applied_change=row.applied_change if row is not None else None,
                    applied_at=row.applied_at if row is not None else None,
                    last_error=row.last_error if row is not None else None,
                    vpn_ip=row.vpn_ip if row is not None else None,
                    multi_host_instances=serving.get(name, 0),
                )
            )
        return views

    def list_audit(self, limit: int = 200, offset: int = 0) -> list[AuditView]:
        with self.db.read() as connection:
            query = (
                select(
                    audit_events.c.id,
                    audit_events.c.at,
                    audit_events.c.actor,
                    audit_events.c.action,
                    audit_events.c.target,
                    audit_events.c.before,
                    audit_events.c.after,
                )
                .order_by(audit_events.c.id.desc())
                .offset(max(0, offset))
                .limit(max(0, limit))
            )
            return [AuditView(*row) for row in connection.execute(query)]

    def dhcp_event(self, action: str, mac: str, address: str, hostname: str | None = None) -> bool:
        """A lease event from dnsmasq's ``--dhcp-script``; returns whether state changed.

        ``add``/``old`` mark the address leased; ``del`` clears the lease and, for an
        address whose instance is gone, makes it free again. (`netcon dhcp-event`, which
        dnsmasq runs, does the same on a bare driver connection to start fast.)
        """
        if action not in DHCP_ACTIONS:
            raise InvalidInput("action", f"{action!r} must be one of {', '.join(DHCP_ACTIONS)}")
        mac = validate.mac("mac", mac)
        text = str(validate.ipv4_address("address", address))
        database = RawDatabase(self.db.url)
        try:
            network_id = record_lease(database, action, mac, text, self.actor, self.clock())
        finally:
            database.close()
        if network_id is None:
            return False
        self._tell(ChangeSet(frozenset({network_id})))
        return True


def _networks_owed(connection: Connection, names: set[str]) -> set[tuple[str, int]]:
    """(host, network id) for every network a change still pending on one of ``names``
    names: that host has not caught up with it yet."""
    rows = connection.execute(
        select(host_changes.c.host, host_changes.c.networks)
        .select_from(host_changes)
        .outerjoin(hosts, hosts.c.name == host_changes.c.host)
        .where(
            host_changes.c.host.in_(sorted(names)),
            hosts.c.applied_change.is_(None) | (host_changes.c.change_id > hosts.c.applied_change),
        )
    )
    return {(host, int(n)) for host, named in rows for n in json.loads(named)}
