"""HostLayer: read the desired state, observe the host, plan, apply — for one namespace.

An apply holds the namespace's apply lock (core.linux.applylock) from before it looks
at the host until its plan is carried out. Given a scope (core.linux.scope), it reads,
looks at and changes only what the scope names; a scope it cannot plan alone (a
network that is gone, netcon's table still to be made) becomes a full comparison.
"""

from __future__ import annotations

import os
import sys
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING

from core.config import Settings
from core.defaults import LOCK_TIMEOUT as DEFAULT_LOCK_TIMEOUT
from core.errors import HostError
from core.linux import dnsmasq, metadata, namespace, processes, secgroup_nft, secgroups
from core.linux.applylock import ApplyLock, WaitNotice
from core.linux.desired import DesiredHost, ScopeUnknown, desired_from_connection, read_desired
from core.linux.lease import Lease, leased
from core.linux.netlink import Netlink, kernel_has_8021q
from core.linux.nft import Nft
from core.linux.observed import FLOATING_LABEL, OWNER_ALIAS, ObservedHost, observe, observe_scoped
from core.linux.operations import Operation, Plan, RenewLease, VpnOperation
from core.linux.planner import PlanContext, plan
from core.linux.scope import Scope
from core.linux.vpn import plan as vpn_plan
from core.store.db import Database

if TYPE_CHECKING:
    # Imported on use: a plan with nothing to do needs neither.
    from core.linux.executor import Executor
    from core.linux.nftelements import Lookup

# How long an apply waits for another one to finish, unless told otherwise: as long as
# a change waits for another writer.
LOCK_TIMEOUT = DEFAULT_LOCK_TIMEOUT

CAP_NET_ADMIN = 12


def can_change_host() -> bool:
    """Whether this process holds CAP_NET_ADMIN (root normally does)."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("CapEff:"):
                return bool(int(line.split()[1], 16) >> CAP_NET_ADMIN & 1)
    except OSError:
        pass
    return False


def need_net_admin(what: str) -> None:
    if not can_change_host():
        raise HostError(f"{what} needs CAP_NET_ADMIN: run it as root")


class HostLayer:
    """The host side of one namespace; keeps its netlink socket open for its lifetime."""

    def __init__(
        self, settings: Settings, db: Database | None = None, netns: str | None = None
    ) -> None:
        self.settings = settings
        self.db = db
        self.netns = netns if netns is not None else settings.netns
        namespace.check_netns(self.netns)
        self.state_dir = Path(settings.state_dir) / namespace.state_key(self.netns)
        self.dhcp_dir = self.state_dir / "dhcp"
        self.journal = self.state_dir / "creating"
        # Present once netcon has made its nftables table in this namespace.
        self.nat_marker = self.state_dir / "nat-table"
        self.nft = Nft(settings.nft_binary, self.netns)
        self.lock = ApplyLock.of(settings.state_dir, self.netns)
        # The desired state (or scoped desired state) the last plan was made for.
        self.last_planned: DesiredHost | None = None
        # Whether gateway and floating addresses carry the heartbeat lease here, and the
        # lease an apply gives them (set by whoever renewed the heartbeat: see lease.py).
        self.leased = leased(settings.fencing, db.dialect if db is not None else None)
        self.lease: Lease | None = None
        self._netlink: Netlink | None = None
        self._lookup: Lookup | None = None

    @property
    def netlink(self) -> Netlink:
        if self._netlink is None:
            self._netlink = Netlink(self.netns)
        return self._netlink

    def close(self) -> None:
        if self._netlink is not None:
            self._netlink.close()
            self._netlink = None
        if self._lookup is not None:
            self._lookup.close()
            self._lookup = None
        self.nft.close()

    def lookup(self) -> Lookup:
        """The nfnetlink socket for lookups of single elements, opened on first use."""
        if self._lookup is None:
            from core.linux.nftelements import Lookup

            self._lookup = Lookup(self.netns)
        return self._lookup

    def desired(self) -> DesiredHost:
        if self.db is None:
            raise HostError("the host layer was given no database to read the desired state from")
        return read_desired(self.db, self.settings)

    def observe(self, desired: DesiredHost | None = None) -> ObservedHost:
        nat_needed = desired is None or bool(
            desired.snat_ranges or desired.floating or desired.isolated_bridges
        )
        return observe(
            self.netlink,
            self.nft,
            self.dhcp_dir,
            self.journal,
            self.netns,
            nat_marker=self.nat_marker,
            nat_needed=nat_needed,
            may_change=can_change_host(),
            security_dir=self.state_dir if desired is None or desired.security else None,
            # Instance ports are filtered, and netcon's bridges closed to unknown ports.
            security_needed=desired is None
            or bool(desired.security and desired.security.ports)
            or any(n.owns_bridge for n in desired.networks),
        )

    def plan(self, desired: DesiredHost | None = None, *, scope: Scope | None = None) -> Plan:
        """The plan for ``desired``, or for the database's desired state and VPNs (of
        ``scope`` only, when given)."""
        # dnsmasq, the metadata server and OpenVPN are all looked for in one walk of /proc.
        with processes.one_look():
            return self._plan(desired, scope)

    def _plan(self, desired: DesiredHost | None, scope: Scope | None) -> Plan:
        if desired is not None:
            return plan(desired, self.observe(desired), self._context())
        if scope is not None and scope.vpns_only:
            return self._plan_vpns(scope.vpns)
        if scope is not None:
            scoped = self._plan_scope(scope)
            if scoped is not None:
                return scoped
        if self.db is None:
            raise HostError("the host layer was given no database to read the desired state from")
        # One read of the database for everything the plan needs.
        with self.db.read() as connection:
            wanted = desired_from_connection(connection, self.settings)
            specs = vpn_plan.desired_specs(connection, self.settings)
            routes = metadata.wanted_routes(connection, self.settings)
        self.last_planned = wanted
        result = plan(wanted, self.observe(wanted), self._context())
        vpns = vpn_plan.operations_for(specs, self.settings, self.netns)
        served = self._metadata_plan(routes, held=result.held)
        return replace(result, operations=result.operations + tuple(vpns) + tuple(served))

    def _plan_vpns(self, projects: frozenset[str]) -> Plan:
        """Only the servers of ``projects``: a change to a VPN alone (``vpn run``)
        touches nothing else of its network."""
        if self.db is None:
            raise HostError("the host layer was given no database to read the desired state from")
        with self.db.read() as connection:
            specs = vpn_plan.desired_specs(connection, self.settings, projects)
        self.last_planned = None
        operations = vpn_plan.operations_for(specs, self.settings, self.netns, only=set(projects))
        return Plan(operations=tuple(operations))

    def renewal(self) -> Plan:
        """The renewal of everything here that carries the heartbeat lease (netcon's
        addresses with a lifetime, VPN taps' elements with a timeout), for a lease just
        renewed. The addresses come from the copy of the kernel's kept by notifications,
        so they cost no dump; the elements from one read of the bridge table's set of
        netcon's own ports (not of its instance ports)."""
        links, addresses = self.netlink.state()
        names = {link.index: link.name for link in links}
        ours = {link.index for link in links if link.alias == OWNER_ALIAS}
        found = tuple(
            sorted(
                (names[a.index], a.address, a.prefixlen)
                for a in addresses
                if not a.permanent
                and a.index in names
                and (a.index in ours or a.label == FLOATING_LABEL)
            )
        )
        ports: tuple[str, ...] = ()
        if secgroups.marker(self.state_dir).exists():
            bridge = secgroup_nft.read_set(
                self.settings.nft_binary, self.netns, secgroup_nft.BRIDGE, "own_ports"
            )
            ports = tuple(sorted(bridge.expiring.get("own_ports", frozenset())))
        return Plan(operations=(RenewLease(found, ports),) if found or ports else ())

    def vpn_stops(self) -> Plan:
        """The stops of every VPN server running here, whatever the database wants (it
        may be out of reach): a host that may no longer serve runs none."""
        return Plan(operations=tuple(vpn_plan.operations_for([], self.settings, self.netns)))

    def _plan_scope(self, scope: Scope) -> Plan | None:
        if self.db is None:
            raise HostError("the host layer was given no database to read the desired state from")
        try:
            with self.db.read() as connection:
                wanted = desired_from_connection(connection, self.settings, scope)
                assert wanted.reach is not None
                projects = wanted.reach.projects
                if projects is not None:
                    projects = projects | scope.vpns
                specs = []
                if projects is None or projects:
                    specs = vpn_plan.desired_specs(connection, self.settings)
                # Which networks this host serves changes only with a network.
                routes = (
                    metadata.wanted_routes(connection, self.settings) if scope.network_ids else None
                )
        except ScopeUnknown:
            return None
        observed = observe_scoped(
            self.netlink,
            self.lookup,
            self.settings.nft_binary,
            self.dhcp_dir,
            self.journal,
            self.netns,
            wanted,
            nat_marker=self.nat_marker,
            security_dir=self.state_dir,
            may_change=can_change_host(),
            trusted_ports=self.settings.trusted_ports,
        )
        if observed is None:
            return None
        self.last_planned = wanted
        result = plan(wanted, observed, self._context())
        vpns: list[VpnOperation] = []
        if projects is None:
            vpns = vpn_plan.operations_for(specs, self.settings, self.netns)
        elif projects:
            mine = [spec for spec in specs if spec.project in projects]
            vpns = vpn_plan.operations_for(mine, self.settings, self.netns, only=set(projects))
        served = (
            self._metadata_plan(routes, wanted.reach.bridges, held=result.held)
            if routes is not None
            else []
        )
        return replace(result, operations=result.operations + tuple(vpns) + tuple(served))

    def _metadata_plan(
        self,
        routes: tuple[metadata.Route, ...],
        bridges: frozenset[str] | None = None,
        *,
        held: frozenset[str] = frozenset(),
    ) -> list[Operation]:
        """The metadata server and its DNAT, for the networks this host serves (of
        ``bridges`` only, when given: a scoped apply looks up their routes by key)."""
        want = metadata.desired(
            routes, self.settings, self.state_dir, self._dnsmasq_env(), self.netns
        )
        nft_found = dnsmasq.find_binary(self.settings.nft_binary) is not None
        if bridges is not None:
            have = metadata.observe_scoped(
                self.lookup,
                self.settings.nft_binary,
                self.netns,
                want,
                bridges,
                may_change=can_change_host(),
            )
        else:
            have = metadata.observe(
                self.settings.nft_binary,
                self.netns,
                want.files,
                want.port,
                table_wanted=bool(routes) and nft_found,
                may_change=can_change_host(),
            )
        return metadata.plan(want, have, nft_found=nft_found, held=held)

    def apply(
        self,
        operations: Plan,
        *,
        lock_timeout: float | None = LOCK_TIMEOUT,
        on_wait: WaitNotice | None = None,
    ) -> None:
        need_net_admin("host apply")
        with self.lock.hold(lock_timeout, on_wait):
            self._executor().apply(operations)

    def sync(
        self,
        desired: DesiredHost | None = None,
        *,
        scope: Scope | None = None,
        lock_timeout: float | None = LOCK_TIMEOUT,
        on_wait: WaitNotice | None = None,
    ) -> Plan:
        """Plan and apply in one go, holding the apply lock; returns what was applied.

        ``lock_timeout``: seconds to wait for another apply (None: as long as it takes,
        0: not at all); ``on_wait(holder, waited)`` hears about the wait each second.
        """
        need_net_admin("host apply")
        with self.lock.hold(lock_timeout, on_wait):
            self.record_spooled_leases()
            result = self.plan(desired, scope=scope)
            if result.operations or result.problems:
                self._executor().apply(result)
        return result

    def record_spooled_leases(self) -> None:
        """Record the lease events this host's dnsmasq processes could not (see
        dnsmasq.SPOOL), before the database's leases are read for a plan: a dnsmasq in a
        namespace cannot reach a PostgreSQL on the host's loopback, and one this apply
        restarts must be handed the leases it gave meanwhile."""
        lines = dnsmasq.take_spooled(self.dhcp_dir)
        if not lines or self.db is None:
            return
        from core.store.leases import record_spooled
        from core.store.raw import RawDatabase, utcnow

        database = RawDatabase(self.db.url)
        try:
            record_spooled(database, lines, "dnsmasq", utcnow())
        finally:
            database.close()
        dnsmasq.forget_spooled(self.dhcp_dir)

    def _context(self) -> PlanContext:
        return PlanContext(
            dhcp_dir=self.dhcp_dir,
            dnsmasq_path=dnsmasq.find_binary(self.settings.dnsmasq_binary),
            dnsmasq_binary=self.settings.dnsmasq_binary,
            nft_binary=self.settings.nft_binary,
            dhcp_release_path=dnsmasq.find_binary("dhcp_release"),
            leased=self.leased,
            trusted_ports=self.settings.trusted_ports,
            vlan_supported=kernel_has_8021q(),
        )

    def _executor(self) -> Executor:
        from core.linux.executor import Executor

        return Executor(
            netlink=self.netlink,
            nft=self.nft,
            netns=self.netns,
            dhcp_dir=self.dhcp_dir,
            journal=self.journal,
            nat_marker=self.nat_marker,
            dnsmasq_env=self._dnsmasq_env(),
            state_dir=self.settings.state_dir,
            lease=self.lease,
        )

    def _dnsmasq_env(self) -> dict[str, str]:
        # The lease script runs `python -m core.cli dhcp-event`: it needs the database
        # and this checkout on its import path, whatever dnsmasq's environment is.
        source = str(Path(__file__).resolve().parents[2])
        path = os.environ.get("PYTHONPATH")
        env = {
            "PATH": os.environ.get("PATH", "/usr/sbin:/usr/bin:/sbin:/bin"),
            "PYTHONPATH": source + (os.pathsep + path if path else ""),
            "NETCON_PYTHON": sys.executable,
        }
        if self.db is not None:
            env["NETCON_DATABASE_URL"] = self.db.url
        return env
