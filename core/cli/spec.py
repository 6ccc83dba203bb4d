"""The one form every command is declared in: a group of actions, each with its arguments.

A command module builds a :class:`Group` and decorates its handlers; the parser, the
help, ``netcon batch`` and the shell completion scripts are all made from these
declarations, so a command is written down once.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, TypeVar

if TYPE_CHECKING:
    from core.cli.context import Context

Handler = Callable[["Context"], int | None]
H = TypeVar("H", bound=Handler)


@dataclass(frozen=True)
class Arg:
    names: tuple[str, ...]
    options: dict[str, Any]
    # What the shell completes this argument from: a kind `netcon complete` knows
    # (project, instance, network, pool, floating, secgroup, host, netns) or a fixed
    # list of words.
    complete: str | tuple[str, ...] | None = None

    @property
    def positional(self) -> bool:
        return not self.names[0].startswith("-")

    @property
    def takes_value(self) -> bool:
        return self.options.get("action") not in ("store_true", "store_false", "count")


def arg(*names: str, complete: str | tuple[str, ...] | None = None, **options: Any) -> Arg:
    choices = options.get("choices")
    if complete is None and choices is not None:
        complete = tuple(choices)
    return Arg(names, options, complete)


@dataclass
class Command:
    name: str
    help: str
    args: tuple[Arg, ...]
    handler: Handler
    description: str | None = None


@dataclass
class Group:
    """A noun (``network``) and its actions (``create``, ``list`` ...), or nested groups."""

    name: str
    help: str
    commands: list[Command] = field(default_factory=list)
    groups: list[Group] = field(default_factory=list)

    def command(
        self, name: str, help: str, *args: Arg, description: str | None = None
    ) -> Callable[[H], H]:
        def register(handler: H) -> H:
            self.commands.append(Command(name, help, args, handler, description))
            return handler

        return register

    def group(self, name: str, help: str) -> Group:
        child = Group(name, help)
        self.groups.append(child)
        return child


def netns_arg() -> Arg:
    return arg(
        "--netns",
        metavar="NAME",
        type=existing_netns,
        complete="netns",
        help="act inside this network namespace (rehearsals, tests)",
    )


def existing_netns(name: str) -> str:
    """A namespace name is checked as the words are read, so a command refuses a bad one
    before it opens the database."""
    from core.linux.namespace import check_netns

    check_netns(name)
    return name
