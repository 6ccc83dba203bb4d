"""What one change touches, so that its apply plans and changes only that.

A committed change names the networks and floating IPs it touched: the service's
ChangeSet does, and so does the payload an agent receives for it. An apply given that
scope reads only those rows, looks at only the kernel objects they own (asked for by
name and key, never by listing everything), and plans only them. Such an apply never
deletes anything outside its scope, so it is safe with any scope, idempotent like the
full one, and costs what the change costs, however large the host. `host apply` keeps
the full comparison, which also finds what nobody announced. The host layer plans the
desired state a scope was read for; HostSync (core.service) reads it and applies:

    sync.apply(Scope(network_ids=frozenset({7}), floating=frozenset({"203.0.113.9"})))
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
    def security_groups(self) -> Set[int]: ...
    @property
    def security_ports(self) -> Set[tuple[str, str]]: ...
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
    # What of the filter changed, when known: the groups whose rules changed and the
    # instance ports, as (MAC, fixed address), that came, went or changed groups. Then
    # the filter is compared only at those keys (see core.desired.secgroups_keyed).
    filter_groups: frozenset[int] = frozenset()
    filter_ports: frozenset[tuple[str, str]] = frozenset()

    @property
    def filter_keyed(self) -> bool:
        return self.security and bool(self.filter_groups or self.filter_ports)

    @property
    def whole_filter(self) -> bool:
        """Whether an apply of this scope compares the whole filter: a filter change
        that names no keys, or a network's change that is no filter change (a network's
        DHCP servers, ports and uplinks are in the filter, under no key a change names)."""
        return bool(self.security or self.network_ids) and not self.filter_keyed

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
            frozenset(changes.security_groups),
            frozenset(changes.security_ports),
        )

    def __or__(self, other: Scope) -> Scope:
        # A whole comparison of the filter wins over a list of keys.
        keyed = not (self.whole_filter or other.whole_filter)
        return Scope(
            self.network_ids | other.network_ids,
            self.floating | other.floating,
            self.security or other.security,
            self.vpns | other.vpns,
            self.filter_groups | other.filter_groups if keyed else frozenset(),
            self.filter_ports | other.filter_ports if keyed else frozenset(),
        )

    def covers(self, other: Scope) -> bool:
        """Whether an apply of this scope carries out everything ``other`` asks for."""
        return (
            other.network_ids <= self.network_ids
            and other.floating <= self.floating
            and self._covers_filter(other)
            and other.vpns <= self.vpns
        )

    def _covers_filter(self, other: Scope) -> bool:
        """A whole comparison of the filter covers any filter change; one at some keys
        covers a change at those keys only."""
        if not (other.security or other.network_ids) or self.whole_filter:
            return True
        return (
            self.filter_keyed
            and other.filter_keyed
            and other.filter_groups <= self.filter_groups
            and other.filter_ports <= self.filter_ports
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
            "filter_groups": sorted(self.filter_groups),
            "filter_ports": sorted([mac, address] for mac, address in self.filter_ports),
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Scope:
        return cls(
            frozenset(int(n) for n in data.get("networks", ())),
            frozenset(str(a) for a in data.get("floating", ())),
            bool(data.get("security", False)),
            frozenset(str(p) for p in data.get("vpns", ())),
            frozenset(int(g) for g in data.get("filter_groups", ())),
            frozenset((str(m), str(a)) for m, a in data.get("filter_ports", ())),
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
