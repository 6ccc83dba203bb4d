"""The one service API that the console, the CLI and scripts call.

Each public method is one database transaction (or one read); refusals raise the
errors of :mod:`core.errors` with a one-line message naming the field and the rule.
"""

from __future__ import annotations

from core.service.agents import AgentService
from core.service.base import ChangeSet, Listener
from core.service.floating import FloatingService
from core.service.guests import GuestService
from core.service.host import HostService
from core.service.instances import InstanceService
from core.service.networks import NetworkService
from core.service.operations import OperationsService
from core.service.secgroups import SecurityGroupService
from core.service.vpn import VpnService


class NetconService(
    OperationsService,
    HostService,
    VpnService,
    AgentService,
    GuestService,
    NetworkService,
    InstanceService,
    FloatingService,
    SecurityGroupService,
):
    """Networks, fixed and floating IPs, projects, instances, security groups, VPNs.

    The demo cloud is not part of it: core.service.demo.load_demo fills a database
    through these calls."""


__all__ = ["ChangeSet", "Listener", "NetconService"]
