"""Read-outs for operators (VPNs, hosts, audit) and the DHCP server's lease events."""

from __future__ import annotations

import json

from sqlalchemy import Connection, select

import core.service.vpnclients as vpnclients
from core import validate
from core.errors import InvalidInput
from core.managers.capabilities import kinds
from core.service.base import ChangeSet
from core.service.part import Part
from core.store.leases import record_lease
from core.store.raw import RawDatabase
from core.store.schema import audit_events, host_changes, hosts, networks, projects
from core.views import AuditView, HostView, VpnView

DHCP_ACTIONS = ("add", "old", "del")


class OperationsPart(Part):
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
                .where(networks.c.manager.in_(kinds(runs_vpn=True)))
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
                    state=vpn_state(
                        self.settings,
                        n,
                        where,
                        owed=bool({(n.host, n.id), (n.host, n.project_name)} & owed),
                    ),
                    out_of_date=sum(
                        1
                        for record in handed_out
                        if record.project_id == n.project_id and vpnclients.out_of_date(record, now)
                    ),
                )
            )
        return views

    def list_hosts(self) -> list[HostView]:
        from core.store.hostlist import read_hosts

        with self.db.read() as connection:
            return read_hosts(
                lambda sql: connection.exec_driver_sql(sql).all(),
                self.clock(),
                self.settings.host_down_time,
            )

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
        self._context.tell(ChangeSet(frozenset({network_id})))
        return True


def _networks_owed(connection: Connection, names: set[str]) -> set[tuple[str, int | str]]:
    """(host, network id) for every network, and (host, project) for every project VPN,
    a change still pending on one of ``names`` names: that host has not caught up with
    it yet."""
    rows = connection.execute(
        select(host_changes.c.host, host_changes.c.networks, host_changes.c.vpns)
        .select_from(host_changes)
        .outerjoin(hosts, hosts.c.name == host_changes.c.host)
        .where(
            host_changes.c.host.in_(sorted(names)),
            hosts.c.applied_change.is_(None) | (host_changes.c.change_id > hosts.c.applied_change),
        )
    )
    owed: set[tuple[str, int | str]] = set()
    for host, named, vpns in rows:
        owed.update((host, int(n)) for n in json.loads(named))
        owed.update((host, str(p)) for p in json.loads(vpns))
    return owed
