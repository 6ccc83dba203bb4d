"""Every view of the console, by name and by the words `:` accepts for it."""

from __future__ import annotations

from typing import Any

from tui.views.audit import AUDIT
from tui.views.base import ViewSpec
from tui.views.fixed import FIXED
from tui.views.floating import FLOATING
from tui.views.hosts import HOSTS
from tui.views.instances import INSTANCES
from tui.views.members import MEMBERS
from tui.views.networks import NETWORKS
from tui.views.projects import PROJECTS
from tui.views.rules import RULES
from tui.views.secgroups import SECGROUPS
from tui.views.vpn_users import VPN_USERS
from tui.views.vpns import VPNS

# Any: each view lists rows of its own type; the screen treats them alike.
AnyView = ViewSpec[Any]

VIEWS: dict[str, AnyView] = {
    v.name: v
    for v in (
        PROJECTS, NETWORKS, FIXED, FLOATING, VPNS, INSTANCES, SECGROUPS, HOSTS, AUDIT,
        RULES, VPN_USERS, MEMBERS,
    )
}

ALIASES: dict[str, str] = {
    alias: v.name for v in VIEWS.values() if v.listed for alias in v.aliases
}

# What `:` offers besides views.
COMMANDS = ("ctx", "quit", "q")


def resolve(word: str) -> AnyView | None:
    """The view a `:` word names (`vlans` → networks), also by a unique prefix (`ins`)."""
    typed = word.strip().lstrip(":").lower()
    if not typed:
        return None
    if typed in ALIASES:
        return VIEWS[ALIASES[typed]]
    names = {ALIASES[a] for a in ALIASES if a.startswith(typed)}
    return VIEWS[names.pop()] if len(names) == 1 else None


def completions(typed: str) -> list[str]:
    """The `:` words that start with ``typed``, views' first names first."""
    typed = typed.strip().lower()
    first = [v.aliases[0] for v in VIEWS.values() if v.listed]
    words = first + [a for a in ALIASES if a not in first] + list(COMMANDS)
    return [w for w in words if w.startswith(typed)]
