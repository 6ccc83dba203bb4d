"""Every command netcon has, in the order `netcon --help` lists them."""

from __future__ import annotations

from core.cli.agent import command as agent
from core.cli.batch import command as batch
from core.cli.completion import command as completion
from core.cli.database import command as database
from core.cli.demo import command as demo
from core.cli.fixed import group as fixed
from core.cli.floating import group as floating
from core.cli.host import group as host
from core.cli.instances import group as instances
from core.cli.keys import group as keys
from core.cli.lean import complete_command, dhcp_event_command
from core.cli.networks import group as networks
from core.cli.projects import group as projects
from core.cli.secgroups import group as secgroups
from core.cli.serve import command as serve
from core.cli.spec import Command, Group
from core.cli.vpn import group as vpn

COMMANDS: tuple[Group | Command, ...] = (
    networks,
    fixed,
    floating,
    projects,
    instances,
    secgroups,
    keys,
    vpn,
    host,
    agent,
    serve,
    database,
    demo,
    batch,
    completion,
    complete_command,
    dhcp_event_command,
)
