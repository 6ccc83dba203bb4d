"""HostLayer: given the desired state, observe the host, plan, apply — for one namespace.

It never reads the database: it is handed what the host must have (core.linux.wanted,
read by core.desired for HostSync). An apply holds the namespace's apply lock
(core.linux.applylock) from before it looks at the host until its plan is carried out.
Handed a scope's desired state (its ``reach`` set), it looks at and changes only what
the scope names; one it cannot plan alone (netcon's table still to be made) raises
WholeHostNeeded, and the whole host is compared instead.
"""

from __future__ import annotations

import functools
import os
import sys
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING

from core.config import Settings
from core.defaults import LOCK_TIMEOUT as DEFAULT_LOCK_TIMEOUT
from core.errors import HostError
from core.linux import (
    dnsmasq,
    hostinput,
    namespace,
    processes,
    segment6,
)
from core.linux.applylock import ApplyLock, WaitNotice
from core.linux.desired import DesiredHost
from core.linux.lease import Lease
from core.linux.metadata import observe as metadata_observe
from core.linux.metadata import plan as metadata_plan
from core.linux.metadata import spec as metadata
from core.linux.netlink import Netlink, kernel_has_8021q
from core.linux.nft import Nft
from core.linux.observed import FLOATING_LABEL, OWNER_ALIAS, ObservedHost, observe, observe_scoped
from core.linux.operations import Operation, Plan, RenewLease, VpnOperation
from core.linux.planner import PlanContext, plan
from core.linux.secgroups import record as filter_record
from core.linux.secgroups import tables as filter_tables
from core.linux.secgroups.observe import marker as filter_marker
from core.linux.secgroups.state import read_set
from core.linux.vpn import plan as vpn_plan
from core.linux.wanted import Planned, Wanted, WholeHostNeeded

if TYPE_CHECKING:
    # Imported on use: a plan with nothing to do needs neither.
    from core.linux.executor import Executor
    from core.linux.nftelements import Lookup

# How long an apply waits for another one to finish, unless told otherwise: as long as
# a change waits for another writer.
LOCK_TIMEOUT = DEFAULT_LOCK_TIMEOUT

CAP_NET_ADMIN = 12


@functools.cache
def can_change_host() -> bool:
    """Whether this process holds CAP_NET_ADMIN (root normally does). Read once: a
    process's capabilities change only when it changes them, which netcon never does,
    and an apply asks several times (each read makes the kernel write all of
    /proc/self/status)."""
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
        self,
        settings: Settings,
        netns: str | None = None,
        *,
        leased: bool = False,
        database_url: str | None = None,
    ) -> None:
        """``leased``: gateway and floating addresses carry the heartbeat lease here;
        ``database_url``: where dnsmasq's lease script records leases."""
        self.settings = settings
        self.database_url = database_url
        self.netns = netns if netns is not None else settings.netns
        namespace.check_netns(self.netns)
        self.state_dir = Path(settings.state_dir) / namespace.state_key(self.netns)
        self.dhcp_dir = self.state_dir / "dhcp"
        self.journal = self.state_dir / "creating"
        # Present once netcon has made its nftables table in this namespace.
        self.nat_marker = self.state_dir / "nat-table"
        self.nft = Nft(settings.nft_binary, self.netns)
        self.lock = ApplyLock.of(settings.state_dir, self.netns)
        # Whether gateway and floating addresses carry the heartbeat lease here, and the
        # lease an apply gives them (set by whoever renewed the heartbeat: see lease.py).
        self.leased = leased
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
            lookup=self.lookup,
        )

    def plan(self, wanted: Wanted | DesiredHost) -> Planned:
        """The plan for what this host must have, and the desired state it was made
        from. Raises WholeHostNeeded for a scope it cannot plan alone."""
        # dnsmasq, the metadata server and OpenVPN are all looked for in one walk of /proc.
        with processes.one_look():
            if isinstance(wanted, DesiredHost):
                return Planned(plan(wanted, self.observe(wanted), self._context()), wanted)
            return self._plan(wanted)

    def _plan(self, wanted: Wanted) -> Planned:
        desired = wanted.host
        if desired is None:
            # Only the servers of some projects: a change to a VPN alone (`vpn run`)
            # touches nothing else of its network.
            return Planned(Plan(operations=tuple(self._vpn_plan(wanted))), None)
        reach = desired.reach
        if reach is None:
            observed = self.observe(desired)
        else:
            scoped = observe_scoped(
                self.netlink,
                self.lookup,
                self.settings.nft_binary,
                self.dhcp_dir,
                self.journal,
                self.netns,
                desired,
                nat_marker=self.nat_marker,
                security_dir=self.state_dir,
                may_change=can_change_host(),
                trusted_ports=self.settings.trusted_ports,
            )
            if scoped is None:
                raise WholeHostNeeded
            observed = scoped
        result = plan(desired, observed, self._context())
        served: list[Operation] = []
        if wanted.routes is not None:
            bridges = reach.bridges if reach is not None else None
            served = self._metadata_plan(wanted.routes, desired, bridges, held=result.held)
        links = segment6.segment_links([n for n in desired.networks if n.bridge not in result.held])
        have6 = segment6.observe(
            self.settings.nft_binary,
            self.netns,
            self.state_dir,
            wanted=bool(links),
            may_change=can_change_host(),
        )
        served += segment6.plan(
            links,
            have6,
            nft_found=dnsmasq.find_binary(self.settings.nft_binary) is not None,
            scoped=reach is not None,
        )
        served += self._host_input_plan(desired, result.held, scoped=reach is not None)
        operations = result.operations + tuple(self._vpn_plan(wanted)) + tuple(served)
        return Planned(replace(result, operations=operations), desired)

    def _host_input_plan(
        self, desired: DesiredHost, held: frozenset[str], *, scoped: bool
    ) -> list[Operation]:
        """The host input filter of netcon's bridges (a held network's left as it is)."""
        bridges = hostinput.guarded_bridges([n for n in desired.networks if n.bridge not in held])
        if scoped:
            have = hostinput.observe_scoped(
                self.lookup,
                self.settings.nft_binary,
                self.netns,
                self.state_dir,
                bridges,
                may_change=can_change_host(),
            )
        else:
            have = hostinput.observe(
                self.settings.nft_binary,
                self.netns,
                self.state_dir,
                wanted=bool(bridges),
                may_change=can_change_host(),
            )
        return hostinput.plan(
            bridges,
            have,
            nft_found=dnsmasq.find_binary(self.settings.nft_binary) is not None,
            held=held,
            scoped=scoped,
        )

    def _vpn_plan(self, wanted: Wanted) -> list[VpnOperation]:
        specs = list(wanted.vpns)
        if wanted.vpn_projects is None:
            return vpn_plan.operations_for(specs, self.settings, self.netns)
        if not wanted.vpn_projects:
            return []
        only = set(wanted.vpn_projects)
        return vpn_plan.operations_for(specs, self.settings, self.netns, only=only)

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
        if filter_marker(self.state_dir).exists():
            bridge = read_set(
                self.settings.nft_binary, self.netns, filter_tables.BRIDGE, "own_ports"
            )
            ports = tuple(sorted(bridge.expiring.get("own_ports", frozenset())))
        return Plan(operations=(RenewLease(found, ports),) if found or ports else ())

    def vpn_stops(self) -> Plan:
        """The stops of every VPN server running here, whatever the database wants (it
        may be out of reach): a host that may no longer serve runs none."""
        return Plan(operations=tuple(vpn_plan.operations_for([], self.settings, self.netns)))

    def _metadata_plan(
        self,
        routes: tuple[metadata.Route, ...],
        desired: DesiredHost,
        bridges: frozenset[str] | None = None,
        *,
        held: frozenset[str] = frozenset(),
    ) -> list[Operation]:
        """The metadata server, its DNAT in both families and fe80::a9fe:a9fe on the
        dual-stack networks' bridges, for the networks this host serves (of ``bridges``
        only, when given: a scoped apply looks up their routes by key)."""
        want = metadata.desired(
            routes,
            self.settings,
            self.state_dir,
            self._dnsmasq_env(),
            self.netns,
            metadata.wanted_routes6(desired.networks),
        )
        nft_found = dnsmasq.find_binary(self.settings.nft_binary) is not None
        if bridges is not None:
            have = metadata_observe.observe_scoped(
                self.lookup,
                self.settings.nft_binary,
                self.netns,
                want,
                bridges,
                may_change=can_change_host(),
            )
        else:
            have = metadata_observe.observe(
                self.settings.nft_binary,
                self.netns,
                want,
                nft_found=nft_found,
                may_change=can_change_host(),
            )
        return metadata_plan.plan(want, have, nft_found=nft_found, held=held, bridges=bridges)

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
        wanted: Wanted | DesiredHost,
        *,
        lock_timeout: float | None = LOCK_TIMEOUT,
        on_wait: WaitNotice | None = None,
    ) -> Planned:
        """Plan and apply in one go, holding the apply lock; returns what was applied.

        ``lock_timeout``: seconds to wait for another apply (None: as long as it takes,
        0: not at all); ``on_wait(holder, waited)`` hears about the wait each second.
        """
        need_net_admin("host apply")
        with self.lock.hold(lock_timeout, on_wait):
            planned = self.plan(wanted)
            self.execute(planned.plan)
        return planned

    def execute(self, operations: Plan) -> None:
        """Carry out a plan; the caller holds the apply lock."""
        if operations.operations or operations.problems:
            self._executor().apply(operations)
        self._record_filter(operations)

    def _record_filter(self, applied: Plan) -> None:
        """After the whole apply (the NAT and metadata tables' changes move the ruleset
        generation too): the generation that the filter, as the plan left it, has."""
        record = applied.filter_record
        if record is None or applied.problems:
            return
        try:
            now = self.lookup().generation()
        except HostError:
            filter_record.forget(self.state_dir)
            return
        if not applied.operations and now != record.generation:
            # Nothing applied, yet the ruleset changed since it was read: someone else's
            # change, which the next apply must look at.
            filter_record.forget(self.state_dir)
            return
        done = filter_record.Record(now, record.digest)
        if filter_record.read(self.state_dir) != done:
            filter_record.write(self.state_dir, done)

    def _context(self) -> PlanContext:
        return PlanContext(
            dhcp_dir=self.dhcp_dir,
            dnsmasq_path=dnsmasq.find_binary(self.settings.dnsmasq_binary),
            dnsmasq_binary=self.settings.dnsmasq_binary,
            nft_binary=self.settings.nft_binary,
            dhcp_release_path=dnsmasq.find_binary("dhcp_release"),
            dhcp_release6_path=dnsmasq.find_binary("dhcp_release6"),
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
        if self.database_url is not None:
            env["NETCON_DATABASE_URL"] = self.database_url
        return env
