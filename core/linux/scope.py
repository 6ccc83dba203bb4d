"""What one change touches, so that its apply plans and changes only that.

A committed change names the networks and floating IPs it touched: the service's
ChangeSet does, and so does the payload an agent receives for it. An apply given that
scope reads only those rows, looks at only the kernel objects they own (asked for by
name and key, never by listing everything), and plans only them. Such an apply never
deletes anything outside its scope, so it is safe with any scope, idempotent like the
full one, and costs what the change costs, however large the host. `host apply` keeps
the full comparison, which also finds what nobody announced.

    layer.sync(scope=Scope(network_ids=frozenset({7}), floating=frozenset({"203.0.113.9"})))
"""

from __future__ import annotations

from collections.abc import Set
from dataclasses import dataclass, field
from typing import Any, Protocol


class Changes(Protocol):
    """What a committed change says it touched (the service's ChangeSet is one): the
    host layer reads it without depending on the service."""

    @property
    def network_ids(self) -> Set[int]: ...
    @property
    def floating(self) -> bool: ...
    @property
    def floating_addresses(self) -> Set[str]: ...
    @property
    def security(self) -> bool: ...
    @property
    def groups(self) -> Set[int]: ...
    @property
    def vpns(self) -> Set[str]: ...


@dataclass(frozen=True)
class Scope:
    network_ids: frozenset[int] = frozenset()
    # Floating addresses whose address and NAT entries may have changed.
    floating: frozenset[str] = frozenset()
    # Instance ports or security groups changed: the host's filter is compared too.
    security: bool = False
    # Project VPNs whose servers are compared (by project name), with their networks'
    # scope or, named alone, without it.
    vpns: frozenset[str] = frozenset()
    # The security groups whose rules or members changed, when known (with ``security``).
    groups: frozenset[int] = frozenset()

    @classmethod
    def of(cls, changes: Changes) -> Scope | None:
        """The scope of a committed change; None when it asks for a full comparison
        (floating IPs changed without saying which)."""
        if changes.floating and not changes.floating_addresses:
            return None
        return cls(
            frozenset(changes.network_ids),
            frozenset(changes.floating_addresses),
            changes.security,
            frozenset(changes.vpns),
            frozenset(changes.groups),
        )

    def __or__(self, other: Scope) -> Scope:
        return Scope(
            self.network_ids | other.network_ids,
            self.floating | other.floating,
            self.security or other.security,
            self.vpns | other.vpns,
            self.groups | other.groups,
        )

    def covers(self, other: Scope) -> bool:
        """Whether an apply of this scope carries out everything ``other`` asks for."""
        return (
            other.network_ids <= self.network_ids
            and other.floating <= self.floating
            and (self.security or not other.security)
            and other.vpns <= self.vpns
        )

    def __bool__(self) -> bool:
        return bool(self.network_ids or self.floating or self.security or self.vpns)

    @property
    def vpns_only(self) -> bool:
        """Only VPN servers are named: their networks are left as they are."""
        return bool(self.vpns) and not (self.network_ids or self.floating or self.security)

    def to_json(self) -> dict[str, Any]:
        return {
            "networks": sorted(self.network_ids),
            "floating": sorted(self.floating),
            "security": self.security,
            "vpns": sorted(self.vpns),
            "groups": sorted(self.groups),
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Scope:
        return cls(
            frozenset(int(n) for n in data.get("networks", ())),
            frozenset(str(a) for a in data.get("floating", ())),
            bool(data.get("security", False)),
            frozenset(str(p) for p in data.get("vpns", ())),
            frozenset(int(g) for g in data.get("groups", ())),
        )


@dataclass(frozen=True)
class Reach:
    """The host objects a scoped apply may touch, named as the kernel and daemons know
    them: those of the scoped networks (wanted here or not: one that left this host is
    taken down) and the scoped floating addresses."""

    links: frozenset[str] = frozenset()  # bridges and segment links
    bridges: frozenset[str] = frozenset()  # whose dnsmasq is in scope
    cidrs: frozenset[str] = frozenset()  # fixed ranges (SNAT and isolation sets)
    floating: frozenset[str] = frozenset()
    # VPN servers to compare, by project; None: all of them (a network lost its project).
    projects: frozenset[str] | None = field(default_factory=frozenset)
