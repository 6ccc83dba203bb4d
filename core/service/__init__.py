"""The one service API that the console, the CLI and scripts call.

Each public method is one database transaction (or one read); refusals raise the
errors of :mod:`core.errors` with a one-line message naming the field and the rule.
"""

from __future__ import annotations

from core.service.agents import AgentService
from core.service.base import ChangeSet, Listener
from core.service.demo import DemoService
from core.service.guests import GuestService
from core.service.host import HostService
from core.service.operations import OperationsService
from core.service.vpn import VpnService


class NetconService(
    DemoService, OperationsService, HostService, VpnService, AgentService, GuestService
):
    """Networks, fixed and floating IPs, projects, instances, security groups, VPNs."""


__all__ = ["ChangeSet", "Listener", "NetconService"]
