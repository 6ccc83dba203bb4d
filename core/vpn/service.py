"""`vpn run | stop | spawn | list | client-config | revoke` over a NetconService.

Each change is one transaction with its AuditEvent (the service's own ``_change``), and
the host work happens inside it: if OpenVPN cannot be started the flag in the
database is rolled back and nothing is left running, so a refusal leaves no trace.
"""

from __future__ import annotations

import ipaddress
from typing import Any

from sqlalchemy import Connection, Row, select, update

from core import validate
from core.errors import Conflict
from core.linux.applylock import ApplyLock
from core.service import NetconService
from core.store.schema import fixed_ips, networks
from core.vpn import plan as vpn_plan
from core.vpn import server
from core.vpn.render import client_config as render_client_config
from core.vpn.server import ServerFiles
from core.vpn.spec import VpnSpec


def _project_network(service: NetconService, connection: Connection, project: str) -> Row[Any]:
    owner = service._project(connection, project)
    network = connection.execute(
        vpn_plan.vpn_networks().where(networks.c.project_id == owner.id)
    ).first()
    if network is None:
        raise Conflict(
            "project",
            f"{project} has no VLAN network (a VLAN project gets one when its first "
            "instance is launched)",
        )
    return network


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


def _host_of(service: NetconService, connection: Connection, network: Row[Any]) -> str:
    """The network's host, picked now if it has none yet."""
    if network.host is not None:
        return str(network.host)
    host = service._pick_host(connection)
    connection.execute(update(networks).where(networks.c.id == network.id).values(host=host))
    return host


def _enable(connection: Connection, network: Row[Any], enabled: bool) -> None:
    connection.execute(
        update(networks).where(networks.c.id == network.id).values(vpn_enabled=enabled)
    )


def _namespace(service: NetconService, netns: str | None) -> str | None:
    # As the host layer: an explicit --netns, else the configured one, else this host.
    return netns if netns is not None else service.settings.netns


def _host_lock(service: NetconService, netns: str | None) -> ApplyLock:
    # Starting and stopping servers changes the host: one change at a time, with applies.
    return ApplyLock.of(service.settings.state_dir, netns)


def _start_if_needed(service: NetconService, spec: VpnSpec, netns: str | None) -> list[str]:
    with _host_lock(service, netns).hold(service.db.lock_timeout):
        operations = vpn_plan.operations_for(
            [spec], service.settings, netns, only={spec.project}
        )
        vpn_plan.apply(operations)
    return [operation.describe() for operation in operations]


def run_vpn(service: NetconService, project: str, netns: str | None = None) -> list[str]:
    """Want the project's VPN running and start it here; returns what was done."""
    netns = _namespace(service, netns)
    done: list[str] = []
    with service._change("vpn.run", project) as (connection, audit):
        network = _project_network(service, connection, project)
        spec = vpn_plan.spec_for(network, service.settings)
        _reserve_client_pool(connection, network, spec)
        host = _host_of(service, connection, network)
        was_enabled = network.vpn_enabled
        audit.before = {"vpn_enabled": was_enabled}
        _enable(connection, network, True)
        audit.after = {"vpn_enabled": True, "host": host}
        audit.network_ids.add(network.id)
        if host == service.settings.host:
            done = _start_if_needed(service, spec, netns)
        elif not was_enabled:
            done = [f"VPN of project {project} is wanted on host {host}"]
        # Already wanted and already answering: no change, so no audit record either.
        audit.skip = was_enabled and not done
    return done


def spawn_vpns(service: NetconService, netns: str | None = None) -> list[str]:
    """`vpn spawn`: run the VPN of every VLAN project, all or none."""
    netns = _namespace(service, netns)
    done: list[str] = []
    started: list[ServerFiles] = []
    try:
        with service._change("vpn.spawn", "every VLAN project") as (connection, audit):
            rows = connection.execute(
                vpn_plan.vpn_networks()
                .where(networks.c.project_id.is_not(None))
                .order_by(networks.c.vlan)
            ).all()
            for network in rows:
                spec = vpn_plan.spec_for(network, service.settings)
                _reserve_client_pool(connection, network, spec)
                host = _host_of(service, connection, network)
                _enable(connection, network, True)
                audit.network_ids.add(network.id)
                if host == service.settings.host:
                    steps = _start_if_needed(service, spec, netns)
                    if steps:
                        started.append(ServerFiles(service.settings.state_dir, spec.project, netns))
                    done += steps
                elif not network.vpn_enabled:
                    done.append(f"VPN of project {spec.project} is wanted on host {host}")
            audit.after = {"vpn_enabled": sorted(n.project_name for n in rows)}
            audit.skip = not done and all(n.vpn_enabled for n in rows)
    except BaseException:
        with _host_lock(service, netns).hold(service.db.lock_timeout):
            for files in started:
                server.stop(files)
        raise
    return done


def stop_vpn(service: NetconService, project: str, netns: str | None = None) -> list[str]:
    """Stop wanting the project's VPN and stop its server here."""
    netns = _namespace(service, netns)
    done: list[str] = []
    with service._change("vpn.stop", project) as (connection, audit):
        network = _project_network(service, connection, project)
        files = ServerFiles(service.settings.state_dir, project, netns)
        running = files.running() is not None
        if not network.vpn_enabled and not running:
            audit.skip = True
            return [f"VPN of project {project} is not running"]
        audit.before = {"vpn_enabled": network.vpn_enabled}
        _enable(connection, network, False)
        audit.after = {"vpn_enabled": False}
        audit.network_ids.add(network.id)
        if running:
            with _host_lock(service, netns).hold(service.db.lock_timeout):
                server.stop(files)
            done.append(f"stopped VPN of project {project}")
        else:
            done.append(f"VPN of project {project} will no longer be started")
    return done


def _local_files(service: NetconService, network: Row[Any]) -> ServerFiles:
    """The project's VPN files on this host; creates its PKI directory on first use."""
    project = network.project_name or "?"
    if network.host not in (None, service.settings.host):
        raise Conflict(
            "project",
            f"the VPN of {project} lives on host {network.host}; run this there",
        )
    files = ServerFiles(service.settings.state_dir, project, service.settings.netns)
    files.claim(vpn_plan.project_identity(network))
    return files


def client_config(service: NetconService, project: str, user: str) -> str:
    """Issue (or reuse) the user's certificate and return a self-contained .ovpn."""
    user = validate.name("user", user)
    text = ""
    with service._change("vpn.client-config", f"{project}/{user}") as (connection, audit):
        network = _project_network(service, connection, project)
        spec = vpn_plan.spec_for(network, service.settings)
        if not spec.public_address:
            # Refused before any file is made: nothing half-made is left behind.
            raise Conflict(
                "vpn_public_address",
                f"network {network.cidr} has none for clients to reach; set vpn_ip",
            )
        files = _local_files(service, network)
        audit.after = {"user": user}
        text = render_client_config(spec, files.pki.client(user))
    return text


def revoke(service: NetconService, project: str, user: str) -> int:
    """Put the user's certificate on the project's CRL; the server refuses it at once."""
    user = validate.name("user", user)
    serial = 0
    with service._change("vpn.revoke", f"{project}/{user}") as (connection, audit):
        files = _local_files(service, _project_network(service, connection, project))
        serial = files.pki.revoke(user)
        audit.after = {"user": user, "serial": f"{serial:x}"}
    return serial


def host_plan(service: NetconService, netns: str | None = None) -> list[vpn_plan.VpnOperation]:
    return vpn_plan.plan(service.db, service.settings, _namespace(service, netns))
