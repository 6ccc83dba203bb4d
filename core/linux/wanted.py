"""What the host layer is handed: everything one read of the database asks of this host,
and what a plan made of it returns."""

from __future__ import annotations

from dataclasses import dataclass

from core.linux.desired import DesiredHost
from core.linux.metadata.spec import Route
from core.linux.operations import Plan
from core.linux.vpn.spec import VpnSpec


@dataclass(frozen=True)
class Wanted:
    # The host's links, addresses, daemons, NAT and filter (``reach`` set when it is a
    # scope's only); None when only VPN servers are compared.
    host: DesiredHost | None
    # The VPN servers this host should run, and whose servers are compared: None every
    # one here, else those projects' only.
    vpns: tuple[VpnSpec, ...] = ()
    vpn_projects: frozenset[str] | None = None
    # The metadata routes of the networks this host serves; None: left as they are.
    routes: tuple[Route, ...] | None = None


@dataclass(frozen=True)
class Planned:
    """A plan and the desired state it was planned from (None: VPN servers only)."""

    plan: Plan
    desired: DesiredHost | None


class WholeHostNeeded(Exception):
    """A scope the host layer cannot plan alone (netcon's table still to be made, a
    network that is gone): only a comparison of the whole host finds what it needs."""
