"""Project VPNs: a project's OpenVPN server on its network's host, and its users.

`vpn run | stop | spawn` commit what is wanted (one transaction with its audit record,
naming the network, so its host hears of the change) and then the host changes the way
every host change is made: the VPN's host applies a plan scoped to those servers,
under its apply lock. This process does it at once when the VPN's host is this one;
another host's agent does it for that host. A server that cannot start leaves the
change wanted and pending, and the next apply tries again.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Collection
from typing import TYPE_CHECKING, Any

from sqlalchemy import Connection, Row, select, update

import core.service.vpnclients as vpnclients
from core import validate
from core.errors import Conflict, HostError
from core.linux.namespace import check_netns
from core.service.part import Part
from core.store.schema import fixed_ips, hosts, networks
from core.views import VpnUserView

if TYPE_CHECKING:
    from core.linux.vpn.server import ServerFiles
    from core.linux.vpn.spec import VpnSpec
    from core.service.agents import AgentsPart
    from core.service.base import ServiceContext


class VpnPart(Part):
    def __init__(self, context: ServiceContext, agents: AgentsPart) -> None:
        super().__init__(context)
        self._agents = agents

    # The VPN's host code is imported on use: its PKI pulls in cryptography, which
    # most commands never need.

    def run_vpn(self, project: str, netns: str | None = None) -> list[str]:
        """Want the project's VPN running; start it if this is its host. Returns the steps."""
        # Listeners (auto-apply) hear of the change after this command's own apply,
        # so what it prints is what it did.
        with self.deferred_changes():
            return self._run_vpn(project, netns)

    def _run_vpn(self, project: str, netns: str | None = None) -> list[str]:
        from core.desired import vpn as vpn_desired

        netns = self._vpn_netns(netns)
        with self._change("vpn.run", project) as (connection, audit):
            network = self._vpn_network(connection, project)
            spec = vpn_desired.spec_for(network, self.settings)
            _reserve_client_pool(connection, network, spec)
            host = self._vpn_host(connection, network)
            if host == self.settings.host:
                _check_can_serve(self.settings.state_dir, spec, netns)
            audit.before = {"vpn_enabled": network.vpn_enabled}
            _enable(connection, network, True)
            audit.after = {"vpn_enabled": True, "host": host}
            audit.vpn_networks.add(network.id)
            audit.vpns.add(project)
            # Already wanted: nothing to record (the apply below still restarts a
            # server that died).
            audit.skip = bool(network.vpn_enabled) and network.host is not None
        if host != self.settings.host:
            return (
                []
                if network.vpn_enabled
                else [f"VPN of project {project} is wanted on host {host}"]
            )
        return self._apply_vpns({project}, netns)

    def stop_vpn(self, project: str, netns: str | None = None) -> list[str]:
        """Stop wanting the project's VPN; stop its server if this is its host."""
        with self.deferred_changes():
            return self._stop_vpn(project, netns)

    def _stop_vpn(self, project: str, netns: str | None = None) -> list[str]:
        netns = self._vpn_netns(netns)
        with self._change("vpn.stop", project) as (connection, audit):
            network = self._vpn_network(connection, project)
            here = network.host in (None, self.settings.host)
            if here:
                check_netns(netns)
            if not network.vpn_enabled and not (
                here and _runs(self.settings.state_dir, project, netns)
            ):
                audit.skip = True
                return [f"VPN of project {project} is not running"]
            audit.before = {"vpn_enabled": network.vpn_enabled}
            _enable(connection, network, False)
            audit.after = {"vpn_enabled": False}
            audit.vpn_networks.add(network.id)
            audit.vpns.add(project)
        if not here:
            return [f"VPN of project {project} is no longer wanted on host {network.host}"]
        done = self._apply_vpns({project}, netns)
        return done or [f"VPN of project {project} will no longer be started"]

    def spawn_vpns(self, netns: str | None = None) -> list[str]:
        """`vpn spawn`: want the VPN of every VLAN project; start those of this host."""
        with self.deferred_changes():
            return self._spawn_vpns(netns)

    def _spawn_vpns(self, netns: str | None = None) -> list[str]:
        from core.desired import vpn as vpn_desired

        netns = self._vpn_netns(netns)
        here: list[str] = []
        elsewhere: list[str] = []
        with self._change("vpn.spawn", "every VLAN project") as (connection, audit):
            rows = connection.execute(
                vpn_desired.vpn_networks()
                .where(networks.c.project_id.is_not(None))
                .order_by(networks.c.vlan)
            ).all()
            for network in rows:
                spec = vpn_desired.spec_for(network, self.settings)
                _reserve_client_pool(connection, network, spec)
                host = self._vpn_host(connection, network)
                if host == self.settings.host:
                    _check_can_serve(self.settings.state_dir, spec, netns)
                    here.append(spec.project)
                elif not network.vpn_enabled:
                    elsewhere.append(f"VPN of project {spec.project} is wanted on host {host}")
                _enable(connection, network, True)
                audit.vpn_networks.add(network.id)
                audit.vpns.add(spec.project)
            audit.after = {"vpn_enabled": sorted(n.project_name for n in rows)}
            audit.skip = all(n.vpn_enabled and n.host is not None for n in rows)
        done = self._apply_vpns(here, netns) if here else []
        return done + elsewhere

    def vpn_client_config(self, project: str, user: str, netns: str | None = None) -> str:
        """Issue (or reuse) the user's certificate; a self-contained .ovpn with its key."""
        from core.desired import vpn as vpn_desired
        from core.linux.vpn.render import client_config

        user = validate.name("user", user)
        text = ""
        with self._change("vpn.client-config", f"{project}/{user}") as (connection, audit):
            network = self._vpn_network(connection, project)
            spec = vpn_desired.spec_for(network, self.settings)
            if not spec.public_address:
                # Refused before any file is made: nothing half-made is left behind.
                raise Conflict(
                    "vpn_public_address",
                    f"network {network.cidr} has none for clients to reach; set vpn_ip",
                )
            files = self._local_vpn_files(network, netns)
            issued = files.pki.client(user)
            text = client_config(spec, issued)
            # What the configuration says is recorded with it, and this host says its
            # address again: a listing anywhere then knows whether it is still current.
            made_for = vpnclients.Endpoint(
                self.settings.host, spec.public_address, spec.public_port
            )
            self._ensure_host(connection, self.settings.host)
            connection.execute(
                update(hosts)
                .where(hosts.c.name == self.settings.host)
                .values(vpn_ip=self.settings.vpn_ip)
            )
            vpnclients.record_issue(
                connection, network.project_id, user, made_for, _serial(issued.cert), self.clock()
            )
            audit.after = {"user": user, "endpoint": made_for.text}
        return text

    def revoke_vpn_user(self, project: str, user: str, netns: str | None = None) -> int:
        """Put the user's certificate on the project's CRL (the server refuses it at
        once); returns its serial."""
        user = validate.name("user", user)
        serial = 0
        with self._change("vpn.revoke", f"{project}/{user}") as (connection, audit):
            network = self._vpn_network(connection, project)
            files = self._local_vpn_files(network, netns)
            serial = files.pki.revoke(user)
            vpnclients.forget(connection, network.project_id, user)
            audit.after = {"user": user, "serial": f"{serial:x}"}
        return serial

    def list_vpn_users(self, project: str, netns: str | None = None) -> list[VpnUserView]:
        """The users of the project's VPN: the configurations handed out (active, or out
        of date when made before the VPN moved to another host or address) and this
        host's certificates, then revoked ones."""
        from core.desired import vpn as vpn_desired
        from core.linux.vpn.pki import ProjectPki
        from core.linux.vpn.server import vpn_root

        with self.db.read() as connection:
            owner = self._project(connection, project)
            network = connection.execute(
                vpn_desired.vpn_networks().where(networks.c.project_id == owner.id)
            ).first()
            now = (
                vpnclients.endpoint(network, vpnclients.host_addresses(connection, self.settings))
                if network is not None
                else vpnclients.Endpoint(None, None, None)
            )
            records = {r.username: r for r in vpnclients.issued(connection, [owner.id])}
        name = owner.name
        where = self._vpn_netns(netns)
        check_netns(where)
        pki = ProjectPki(vpn_root(self.settings.state_dir, where) / name, name)
        users = []
        # Certificates of this host's authority with no record were issued before netcon
        # recorded them: current only if this host is still the VPN's.
        local = {
            user: _serial((pki.clients_dir / f"{user}.crt").read_text()) for user in pki.users()
        }
        for user in sorted(set(records) | set(local)):
            record = records.get(user)
            if record is not None:
                stale = vpnclients.out_of_date(record, now)
                made = vpnclients.made_for(record)
                users.append(
                    VpnUserView(
                        name,
                        user,
                        "out of date" if stale else "active",
                        record.serial,
                        made.text,
                        made.host,
                    )
                )
            else:
                here = now.host in (None, self.settings.host)
                state = "active" if here else "out of date"
                users.append(VpnUserView(name, user, state, local[user], None, self.settings.host))
        if pki.revoked_dir.is_dir():
            # Kept for the record as <user>-<serial>.crt; a hex serial holds no '-'.
            for path in sorted(pki.revoked_dir.glob("*.crt")):
                user, _, serial = path.stem.rpartition("-")
                users.append(VpnUserView(name, user, "revoked", serial, None, self.settings.host))
        return users

    # -- the host's side of a VPN change ------------------------------------------------

    def _apply_vpns(self, projects: Collection[str], netns: str | None) -> list[str]:
        """Apply the committed change to these servers here, as any apply (HostSync):
        planned from the database, carried out by the host layer under the apply lock.
        If that fails, the change stays pending on this host, with the error recorded."""
        from core.linux.scope import Scope
        from core.service.hostsync import HostSync

        try:
            with HostSync(self._agents, netns=netns) as sync:
                done = sync.apply(
                    Scope(vpns=frozenset(projects)), lock_timeout=self.db.lock_timeout
                )
        except HostError as exc:
            raise HostError(
                f"{exc.message} (still wanted: pending on host {self.settings.host} "
                "until an apply succeeds)"
            ) from None
        return done.describe()

    def _vpn_netns(self, netns: str | None) -> str | None:
        # As the host layer: an explicit --netns, else the configured one, else this host.
        return netns if netns is not None else self.settings.netns

    def _vpn_network(self, connection: Connection, project: str) -> Row[Any]:
        from core.desired import vpn as vpn_desired

        owner = self._project(connection, project)
        network = connection.execute(
            vpn_desired.vpn_networks().where(networks.c.project_id == owner.id)
        ).first()
        if network is None:
            raise Conflict(
                "project",
                f"{project} has no VLAN network (a VLAN project gets one when its first "
                "instance is launched)",
            )
        return network

    def _vpn_host(self, connection: Connection, network: Row[Any]) -> str:
        """The network's host, picked now if it has none yet."""
        if network.host is not None:
            return str(network.host)
        host = self._pick_host(connection)
        connection.execute(update(networks).where(networks.c.id == network.id).values(host=host))
        return host

    def _local_vpn_files(self, network: Row[Any], netns: str | None) -> ServerFiles:
        """The project's VPN files on this host (in ``netns``, or the configured
        namespace); creates its PKI directory on first use."""
        from core.desired import vpn as vpn_desired
        from core.linux.vpn.server import ServerFiles

        project = network.project_name or "?"
        if network.host not in (None, self.settings.host):
            raise Conflict(
                "project",
                f"the VPN of {project} lives on host {network.host}; run this there",
            )
        where = self._vpn_netns(netns)
        check_netns(where)
        files = ServerFiles(self.settings.state_dir, project, where)
        files.claim(vpn_desired.project_identity(network))
        return files


def _check_can_serve(state_dir: str, spec: VpnSpec, netns: str | None) -> None:
    """Refuse, before anything is written, what no apply on this host could fix: a
    namespace that does not exist, a port or address the server cannot bind."""
    from core.linux.vpn import server, tap

    check_netns(netns)
    if spec.project in server.running_servers(state_dir, netns):
        return  # its own server holds the port
    tap.check_udp_port_free(netns, spec.public_address, spec.public_port)


def _serial(cert_pem: str) -> str:
    """A certificate's serial number in hexadecimal, as the revocation list names it."""
    from cryptography import x509

    return f"{x509.load_pem_x509_certificate(cert_pem.encode()).serial_number:x}"


def _runs(state_dir: str, project: str, netns: str | None) -> bool:
    from core.linux.vpn import server

    return server.ServerFiles(
        state_dir, project, netns
    ).running() is not None or project in server.running_servers(state_dir, netns)


def _reserve_client_pool(connection: Connection, network: Row[Any], spec: VpnSpec) -> None:
    """Keep instances off the addresses OpenVPN hands to clients."""
    low = int(ipaddress.IPv4Address(spec.pool_start))
    high = int(ipaddress.IPv4Address(spec.pool_end))
    in_pool = (
        (fixed_ips.c.network_id == network.id)
        & (fixed_ips.c.address_int >= low)
        & (fixed_ips.c.address_int <= high)
    )
    busy = connection.execute(
        select(fixed_ips.c.address)
        .where(in_pool, (fixed_ips.c.instance_id.is_not(None)) | fixed_ips.c.leased.is_(True))
        .order_by(fixed_ips.c.address_int)
        .limit(1)
    ).scalar()
    if busy is not None:
        raise Conflict(
            "cnt_vpn_clients",
            f"{busy} in the VPN client pool {spec.pool_start}-{spec.pool_end} "
            "is in use by an instance",
        )
    connection.execute(update(fixed_ips).where(in_pool).values(reserved=True))


def _enable(connection: Connection, network: Row[Any], enabled: bool) -> None:
    connection.execute(
        update(networks).where(networks.c.id == network.id).values(vpn_enabled=enabled)
    )
