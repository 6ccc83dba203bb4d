"""HostLayer: read the desired state, observe the host, plan, apply — for one namespace."""

from __future__ import annotations

import os
import sys
from dataclasses import replace
from pathlib import Path

from core.config import Settings
from core.errors import HostError
from core.linux import dnsmasq, namespace
from core.linux.desired import DesiredHost, read_desired
from core.linux.executor import Executor
from core.linux.netlink import Netlink
from core.linux.nft import Nft
from core.linux.observed import ObservedHost, observe
from core.linux.operations import Plan
from core.linux.planner import PlanContext, plan
from core.store.db import Database
from core.vpn import plan as vpn_plan

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
        self._netlink: Netlink | None = None

    @property
    def netlink(self) -> Netlink:
        if self._netlink is None:
            self._netlink = Netlink(self.netns)
        return self._netlink

    def close(self) -> None:
        if self._netlink is not None:
            self._netlink.close()
            self._netlink = None

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
            security_needed=desired is None or bool(desired.security and desired.security.ports),
        )

    def plan(self, desired: DesiredHost | None = None) -> Plan:
        """The plan for ``desired``, or for the database's desired state and VPNs."""
        if desired is not None:
            return plan(desired, self.observe(desired), self._context())
        wanted = self.desired()
        result = plan(wanted, self.observe(wanted), self._context())
        assert self.db is not None
        vpns = vpn_plan.plan(self.db, self.settings, self.netns)
        return replace(result, operations=result.operations + tuple(vpns))

    def apply(self, operations: Plan) -> None:
        need_net_admin("host apply")
        self._executor().apply(operations)

    def sync(self, desired: DesiredHost | None = None) -> Plan:
        """Plan and apply in one go; returns what was applied."""
        need_net_admin("host apply")
        result = self.plan(desired)
        self._executor().apply(result)
        return result

    def _context(self) -> PlanContext:
        return PlanContext(
            dhcp_dir=self.dhcp_dir,
            dnsmasq_path=dnsmasq.find_binary(self.settings.dnsmasq_binary),
            dnsmasq_binary=self.settings.dnsmasq_binary,
            nft_binary=self.settings.nft_binary,
            dhcp_release_path=dnsmasq.find_binary("dhcp_release"),
        )

    def _executor(self) -> Executor:
        return Executor(
            netlink=self.netlink,
            nft=self.nft,
            netns=self.netns,
            dhcp_dir=self.dhcp_dir,
            journal=self.journal,
            nat_marker=self.nat_marker,
            dnsmasq_env=self._dnsmasq_env(),
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
