"""Every command netcon has, in the order `netcon --help` lists them.

A command line that names a command needs only that command's module and its parser:
the words go to it whatever the others are. A line that names none (the help, a
mistyped name, which is refused with the list of them all), `batch` and `completion`
take every command (COMMANDS).
"""

from __future__ import annotations

import importlib
from typing import Any

from core.cli.spec import Command, Group
from core.cli.words import command_index

# Each command's name, and the module and attribute that declare it.
DECLARED: tuple[tuple[str, str, str], ...] = (
    ("network", "core.cli.networks", "group"),
    ("fixed", "core.cli.fixed", "group"),
    ("floating", "core.cli.floating", "group"),
    ("project", "core.cli.projects", "group"),
    ("instance", "core.cli.instances", "group"),
    ("secgroup", "core.cli.secgroups", "group"),
    ("key", "core.cli.keys", "group"),
    ("vpn", "core.cli.vpn", "group"),
    ("host", "core.cli.host", "group"),
    ("agent", "core.cli.agent", "command"),
    ("serve", "core.cli.serve", "command"),
    ("init", "core.cli.database", "command"),
    ("demo", "core.cli.demo", "command"),
    ("batch", "core.cli.batch", "command"),
    ("completion", "core.cli.completion", "command"),
    ("complete", "core.cli.lean", "complete_command"),
    ("dhcp-event", "core.cli.lean", "dhcp_event_command"),
)
# Commands that read or describe every other one.
NEED_ALL = ("batch", "completion")


def _declared(module: str, attribute: str) -> Group | Command:
    found: Group | Command = getattr(importlib.import_module(module), attribute)
    return found


def every_command() -> tuple[Group | Command, ...]:
    return tuple(_declared(module, attribute) for _, module, attribute in DECLARED)


def commands_for(words: list[str]) -> tuple[Group | Command, ...]:
    """What the parser of ``words`` needs: the command they name; every command when
    they name none (or one of NEED_ALL)."""
    at = command_index(words)
    named = words[at] if at is not None else None
    for name, module, attribute in DECLARED:
        if name == named and name not in NEED_ALL:
            return (_declared(module, attribute),)
    return every_command()


def __getattr__(name: str) -> Any:
    # COMMANDS, for whoever wants every command whole: built on first use.
    if name == "COMMANDS":
        return every_command()
    raise AttributeError(name)
