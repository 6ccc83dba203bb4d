"""Security groups, their rules and instances' memberships.

The host layer enforces them (core/linux/secgroups.py); every change here tells the
listeners so the hosts' filters follow, like any other change.
"""

from __future__ import annotations

import ipaddress
from typing import Any

from sqlalchemy import Connection, Row, delete, func, insert, select

from core import secrules, validate
from core.errors import Conflict, InvalidInput, NotFound, QuotaExceeded
from core.service.ingress import rule_views
from core.service.names import refuse_taken
from core.service.part import Part
from core.store.schema import (
    fixed_ips,
    instance_security_groups,
    instances,
    projects,
    security_group_rules,
    security_groups,
)
from core.views import RuleView, SecurityGroupView

PROTOCOLS = secrules.PROTOCOLS
RuleKey = tuple[str, int, int, str | None, int | None, str]


def add_default_group(connection: Connection, project_id: int) -> int:
    """A project's ``default`` group, letting in anything from its own members over
    either family (as Neutron's does, one rule per ethertype; nova-network's was empty
    and relied on allow_same_net_traffic)."""
    (group_id,) = connection.execute(
        insert(security_groups).values(project_id=project_id, name="default", description="default")
    ).inserted_primary_key  # type: ignore[misc]
    connection.execute(
        insert(security_group_rules),
        [
            {
                "group_id": group_id,
                "protocol": "any",
                "from_port": secrules.ANY,
                "to_port": secrules.ANY,
                "cidr": None,
                "source_group_id": group_id,
                "ethertype": family,
            }
            for family in secrules.ETHERTYPES
        ],
    )
    return int(group_id)


class SecurityGroupsPart(Part):
    def create_security_group(
        self, project: str, name: str, description: str = ""
    ) -> SecurityGroupView:
        validate.name("name", name)
        if len(description) > 255 or any(c in description for c in "\n\r\0"):
            raise InvalidInput("description", "must be one line of at most 255 characters")
        with self._change("secgroup.create", f"{project}/{name}") as (connection, audit):
            owner = self._project(connection, project, lock=True)
            refuse_taken(
                connection,
                security_groups.c.name,
                name,
                security_groups.c.project_id == owner.id,
                field="name",
                taken=f"{owner.name} already has a security group {name!r}",
                what=f"{owner.name}'s security group",
            )
            count = connection.execute(
                select(func.count(security_groups.c.id)).where(
                    security_groups.c.project_id == owner.id
                )
            ).scalar_one()
            quota = self.settings.quota_security_groups
            if quota >= 0 and count >= quota:
                raise QuotaExceeded(
                    f"project {owner.name}: security group quota of {quota} reached "
                    "(quota_security_groups)"
                )
            (group_id,) = connection.execute(
                insert(security_groups).values(
                    project_id=owner.id, name=name, description=description
                )
            ).inserted_primary_key  # type: ignore[misc]
            audit.after = {"description": description}
            # An empty group changes no host: nothing refers to it yet.
            return _group_views(connection, security_groups.c.id == group_id)[0]

    def list_security_groups(self, project: str | None = None) -> list[SecurityGroupView]:
        with self.db.read() as connection:
            if project is None:
                return _group_views(connection)
            owner = self._project(connection, project)
            return _group_views(connection, security_groups.c.project_id == owner.id)

    def delete_security_group(self, project: str, name: str) -> SecurityGroupView:
        with self._change("secgroup.delete", f"{project}/{name}") as (connection, audit):
            group = self._group(connection, project, name)
            if group.name == "default":
                raise Conflict("name", "every project keeps its default security group")
            (view,) = _group_views(connection, security_groups.c.id == group.id)
            if view.instances:
                raise Conflict("name", f"{name} is used by {view.instances} instance(s)")
            citing = connection.execute(
                select(security_group_rules.c.id, security_groups.c.name)
                .join(security_groups, security_group_rules.c.group_id == security_groups.c.id)
                .where(
                    security_group_rules.c.source_group_id == group.id,
                    security_group_rules.c.group_id != group.id,
                )
                .order_by(security_group_rules.c.id)
            ).first()
            if citing is not None:
                raise Conflict(
                    "name",
                    f"{name} is the source of rule #{citing[0]} of group {citing[1]}; "
                    "remove that rule first",
                )
            # No instance uses it and no other rule names it: no host's filter changes
            # but for its own chain and sets, if one was left behind.
            audit.filter_groups.add(group.id)
            audit.before = {"rules": [rule._asdict() for rule in view.rules]}
            connection.execute(delete(security_groups).where(security_groups.c.id == group.id))
        return view

    def add_security_group_rule(
        self,
        project: str,
        group: str,
        protocol: str,
        from_port: int | str | None = None,
        to_port: int | str | None = None,
        cidr: str | None = None,
        source_group: str | None = None,
        ethertype: str | None = None,
    ) -> RuleView:
        """``ethertype``: IPv4 or IPv6; by default the CIDR's family, else IPv4.
        ``icmpv6`` is icmp on IPv6."""
        protocol, family = _protocol_family(protocol, ethertype)
        low, high = _ports(protocol, from_port, to_port)
        if cidr is not None and source_group is not None:
            raise InvalidInput("cidr", "give a CIDR or a source group, not both")
        cidr_text = None
        if cidr is not None:
            network = _rule_network(cidr, family)
            cidr_text = str(network)
            family = secrules.IPV6 if network.version == 6 else secrules.IPV4
        family = family or secrules.IPV4
        if cidr_text is None and source_group is None:
            cidr_text = "::/0" if family == secrules.IPV6 else "0.0.0.0/0"
        with self._change("secgroup.rule.add", f"{project}/{group}") as (connection, audit):
            parent = self._group(connection, project, group)
            source = (
                self._source_group(connection, parent, source_group)
                if source_group is not None
                else None
            )
            wanted: RuleKey = (
                protocol,
                low,
                high,
                cidr_text,
                source.id if source else None,
                family,
            )
            existing = connection.execute(
                select(
                    security_group_rules.c.id,
                    security_group_rules.c.protocol,
                    security_group_rules.c.from_port,
                    security_group_rules.c.to_port,
                    security_group_rules.c.cidr,
                    security_group_rules.c.source_group_id,
                    security_group_rules.c.ethertype,
                ).where(security_group_rules.c.group_id == parent.id)
            ).all()
            for rule in existing:
                have: RuleKey = tuple(rule[1:])  # type: ignore[assignment]
                if have == wanted:
                    raise Conflict("rule", f"{group} already has this rule (id {rule.id})")
                if secrules.overlap(have, wanted):
                    raise Conflict(
                        "rule",
                        f"overlaps rule #{rule.id} of {group} "
                        f"({_rule_words(connection, have)}); widen or remove that rule instead",
                    )
            quota = self.settings.quota_security_group_rules
            if quota >= 0 and len(existing) >= quota:
                raise QuotaExceeded(
                    f"security group {group}: rule quota of {quota} reached "
                    "(quota_security_group_rules)"
                )
            (rule_id,) = connection.execute(
                insert(security_group_rules).values(
                    group_id=parent.id,
                    protocol=protocol,
                    from_port=low,
                    to_port=high,
                    cidr=cidr_text,
                    source_group_id=source.id if source else None,
                    ethertype=family,
                )
            ).inserted_primary_key  # type: ignore[misc]
            view = rule_views(connection, security_group_rules.c.id == rule_id)[0][1]
            audit.after = view._asdict()
            audit.hosts.update(filter_hosts(connection, [parent.id]))
            audit.filter_groups.add(parent.id)
        return view

    def list_security_group_rules(self, project: str, group: str) -> list[RuleView]:
        """A group's rules of both families, in the order they were made."""
        with self.db.read() as connection:
            parent = self._group(connection, project, group)
            return [
                rule
                for _, rule in rule_views(connection, security_group_rules.c.group_id == parent.id)
            ]

    def remove_security_group_rule(self, rule_id: int | str) -> RuleView:
        number = validate.row_id("rule", rule_id)
        with self._change("secgroup.rule.remove", str(number)) as (connection, audit):
            found = rule_views(connection, security_group_rules.c.id == number)
            if not found:
                raise NotFound("rule", f"no security group rule with id {number}")
            group_id, view = found[0]
            audit.before = view._asdict()
            audit.hosts.update(filter_hosts(connection, [group_id]))
            # Its source's member set may be needed no more.
            source = connection.execute(
                select(security_group_rules.c.source_group_id).where(
                    security_group_rules.c.id == number
                )
            ).scalar()
            audit.filter_groups.update(g for g in (group_id, source) if g is not None)
            connection.execute(
                delete(security_group_rules).where(security_group_rules.c.id == number)
            )
        return view

    # -- memberships ---------------------------------------------------------------------

    def add_instance_security_group(self, instance: str, group: str) -> tuple[str, ...]:
        """Put a running instance into one more of its project's groups; its groups after."""
        with self._change("instance.secgroup.add", f"{instance}/{group}") as (connection, audit):
            row = self._instance(connection, instance)
            owner = connection.execute(
                select(projects.c.name).where(projects.c.id == row.project_id)
            ).scalar_one()
            joined = self._group(connection, owner, group, field="group")
            if connection.execute(
                select(instance_security_groups.c.instance_id).where(
                    instance_security_groups.c.instance_id == row.id,
                    instance_security_groups.c.security_group_id == joined.id,
                )
            ).first():
                raise Conflict("group", f"{instance} is already in {group}")
            connection.execute(
                insert(instance_security_groups).values(
                    instance_id=row.id, security_group_id=joined.id
                )
            )
            audit.after = {"group": group}
            audit.hosts.update(filter_hosts(connection, [joined.id]))
            audit.filter_ports.update(instance_ports(connection, row.id))
            audit.filter_groups.add(joined.id)
            return _instance_groups(connection, row.id)

    def remove_instance_security_group(self, instance: str, group: str) -> tuple[str, ...]:
        """Take an instance out of one of its groups; its groups after (possibly none:
        then nothing reaches it but replies and DHCP)."""
        with self._change("instance.secgroup.remove", f"{instance}/{group}") as (
            connection,
            audit,
        ):
            row = self._instance(connection, instance)
            validate.name("group", group)
            left = connection.execute(
                select(security_groups.c.id)
                .join(
                    instance_security_groups,
                    instance_security_groups.c.security_group_id == security_groups.c.id,
                )
                .where(
                    instance_security_groups.c.instance_id == row.id,
                    security_groups.c.name == group,
                )
            ).scalar()
            if left is None:
                raise NotFound("group", f"{instance} is not in a group named {group!r}")
            # Found while the instance is still a member, so its own host is among them.
            audit.hosts.update(filter_hosts(connection, [left]))
            audit.filter_ports.update(instance_ports(connection, row.id))
            audit.filter_groups.add(left)
            connection.execute(
                delete(instance_security_groups).where(
                    instance_security_groups.c.instance_id == row.id,
                    instance_security_groups.c.security_group_id == left,
                )
            )
            audit.before = {"group": group}
            return _instance_groups(connection, row.id)

    def set_instance_security_groups(self, instance: str, groups: list[str]) -> tuple[str, ...]:
        """Make ``groups`` (of the instance's project) exactly the instance's groups, in
        one change: the ones it was not in are joined, the others left. Its groups after."""
        with self._change("instance.secgroup.set", instance) as (connection, audit):
            row = self._instance(connection, instance)
            owner = connection.execute(
                select(projects.c.name).where(projects.c.id == row.project_id)
            ).scalar_one()
            wanted = {
                self._group(connection, owner, name, field="security_groups").id
                for name in dict.fromkeys(groups)
            }
            current = set(
                connection.execute(
                    select(instance_security_groups.c.security_group_id).where(
                        instance_security_groups.c.instance_id == row.id
                    )
                ).scalars()
            )
            if wanted == current:
                audit.skip = True
                return _instance_groups(connection, row.id)
            before = _instance_groups(connection, row.id)
            # Hosts that filter by the groups left are found while it is still a member.
            audit.hosts.update(filter_hosts(connection, sorted(current | wanted)))
            # As joining and leaving one at a time would name them: the instance's ports
            # and the groups whose members change, so hosts apply (and show) just those.
            audit.filter_ports.update(instance_ports(connection, row.id))
            audit.filter_groups.update(current ^ wanted)
            if current - wanted:
                connection.execute(
                    delete(instance_security_groups).where(
                        instance_security_groups.c.instance_id == row.id,
                        instance_security_groups.c.security_group_id.in_(current - wanted),
                    )
                )
            for group_id in sorted(wanted - current):
                connection.execute(
                    insert(instance_security_groups).values(
                        instance_id=row.id, security_group_id=group_id
                    )
                )
            after = _instance_groups(connection, row.id)
            audit.before = {"groups": list(before)}
            audit.after = {"groups": list(after)}
            return after

    # -- look-ups ------------------------------------------------------------------------

    def _group(
        self, connection: Connection, project: str, name: str, field: str = "group"
    ) -> Row[Any]:
        owner = self._project(connection, project)
        validate.name(field, name)
        group = connection.execute(
            select(security_groups).where(
                security_groups.c.project_id == owner.id, security_groups.c.name == name
            )
        ).first()
        if group is None:
            raise NotFound(field, f"{owner.name} has no security group named {name!r}")
        return group

    def _source_group(self, connection: Connection, parent: Row[Any], ref: str) -> Row[Any]:
        """A rule's source group: a group of the rule's own project, named ``name`` or
        ``project/name``; another project's group is refused (its members' addresses are
        that project's business, and isolation keeps them apart anyway)."""
        own = connection.execute(
            select(projects.c.name).where(projects.c.id == parent.project_id)
        ).scalar_one()
        project, _, name = ref.rpartition("/")
        validate.name("source_group", name)
        if project and project != own:
            raise InvalidInput(
                "source_group",
                f"{ref} belongs to project {project}; a rule of {own} may only name {own}'s groups",
            )
        found = connection.execute(
            select(security_groups).where(
                security_groups.c.project_id == parent.project_id, security_groups.c.name == name
            )
        ).first()
        if found is not None:
            return found
        elsewhere = connection.execute(
            select(projects.c.name)
            .join(security_groups, security_groups.c.project_id == projects.c.id)
            .where(security_groups.c.name == name)
            .order_by(projects.c.name)
        ).first()
        if elsewhere is not None:
            raise InvalidInput(
                "source_group",
                f"{name} is a group of project {elsewhere[0]}, not of {own}; "
                f"a rule of {own} may only name {own}'s groups",
            )
        raise NotFound("source_group", f"{own} has no security group named {name!r}")


def instance_ports(connection: Connection, instance_id: int) -> set[tuple[str, str]]:
    """An instance's ports as a change names them to the hosts' filters: (MAC, address)."""
    return {
        (mac, address)
        for mac, address in connection.execute(
            select(fixed_ips.c.mac, fixed_ips.c.address).where(
                fixed_ips.c.instance_id == instance_id, fixed_ips.c.mac.is_not(None)
            )
        )
    }


def filter_hosts(connection: Connection, group_ids: list[int]) -> set[str]:
    """The hosts whose filters change with these groups' rules or members: where their
    members run, and where instances run whose groups' rules name them as a source."""
    citing = select(security_group_rules.c.group_id).where(
        security_group_rules.c.source_group_id.in_(group_ids)
    )
    return set(
        connection.execute(
            select(instances.c.host)
            .join(
                instance_security_groups,
                instance_security_groups.c.instance_id == instances.c.id,
            )
            .where(
                instances.c.host.is_not(None),
                instance_security_groups.c.security_group_id.in_(group_ids)
                | instance_security_groups.c.security_group_id.in_(citing),
            )
            .distinct()
        ).scalars()
    )


def _protocol_family(protocol: str, ethertype: str | None) -> tuple[str, str | None]:
    """The stored protocol and the family a rule names (None: not said, so the CIDR's)."""
    family = None
    if ethertype is not None:
        named = {e.lower(): e for e in secrules.ETHERTYPES}.get(str(ethertype).strip().lower())
        if named is None:
            raise InvalidInput("ethertype", f"{validate.shown(ethertype)} must be IPv4 or IPv6")
        family = named
    if protocol == "icmpv6":
        if family == secrules.IPV4:
            raise InvalidInput("protocol", "icmpv6 is IPv6's ICMP; the rule's ethertype is IPv4")
        return "icmp", secrules.IPV6
    return protocol, family


def _rule_network(cidr: str, family: str | None) -> ipaddress.IPv4Network | ipaddress.IPv6Network:
    """A rule's source CIDR, of the rule's family when it names one."""
    text = str(cidr).strip()
    if "/" not in text:
        raise InvalidInput(
            "cidr", f"{validate.shown(text)} must be a CIDR like 10.0.0.0/8 or 2001:db8::/64"
        )
    try:
        network = ipaddress.ip_network(text, strict=False)
    except ValueError:
        raise InvalidInput("cidr", f"{validate.shown(text)} is not a valid CIDR") from None
    if str(network) != text:
        raise InvalidInput("cidr", f"{text} has host bits set; did you mean {network}?")
    found = secrules.IPV6 if network.version == 6 else secrules.IPV4
    if family is not None and found != family:
        raise InvalidInput("cidr", f"{text} is an {found} range; the rule's ethertype is {family}")
    return network


def _ports(
    protocol: str, from_port: int | str | None, to_port: int | str | None
) -> tuple[int, int]:
    """The stored (from_port, to_port) of a rule, or the refusal naming the field."""
    if protocol not in PROTOCOLS:
        raise InvalidInput("protocol", f"{protocol!r} must be one of tcp, udp, icmp, icmpv6 or any")
    if protocol == "any":
        for field, value in (("from_port", from_port), ("to_port", to_port)):
            if value not in (None, secrules.ANY, str(secrules.ANY)):
                raise InvalidInput(field, "protocol any covers every port; give none (or -1)")
        return secrules.ANY, secrules.ANY
    if protocol == "icmp":
        # nova's convention: type and code, -1 for any.
        low = _icmp("from_port", from_port)
        high = _icmp("to_port", to_port)
        if low == secrules.ANY and high != secrules.ANY:
            raise InvalidInput("to_port", f"ICMP code {high} needs an ICMP type (from_port)")
        return low, high
    if from_port is None:
        raise InvalidInput("from_port", f"{protocol} needs a port range (1-65535)")
    low = validate.port("from_port", from_port)
    high = low if to_port is None else validate.port("to_port", to_port)
    if high < low:
        raise InvalidInput("to_port", f"{high} is below from_port {low}")
    return low, high


def _icmp(field: str, value: int | str | None) -> int:
    if value is None or value in (-1, "-1"):
        return secrules.ANY
    return validate.integer(field, value, 0, 255)


def _rule_words(connection: Connection, rule: RuleKey) -> str:
    protocol, low, high, cidr, source_id, family = rule
    source = None
    if source_id is not None:
        source = connection.execute(
            select(security_groups.c.name).where(security_groups.c.id == source_id)
        ).scalar_one()
    return secrules.rule_words(protocol, low, high, cidr, source, family)


def _instance_groups(connection: Connection, instance_id: int) -> tuple[str, ...]:
    return tuple(
        connection.execute(
            select(security_groups.c.name)
            .join(
                instance_security_groups,
                instance_security_groups.c.security_group_id == security_groups.c.id,
            )
            .where(instance_security_groups.c.instance_id == instance_id)
            .order_by(security_groups.c.name)
        ).scalars()
    )


def _group_views(connection: Connection, *where: Any) -> list[SecurityGroupView]:
    members = (
        select(
            instance_security_groups.c.security_group_id,
            func.count(instance_security_groups.c.instance_id).label("n"),
        )
        .group_by(instance_security_groups.c.security_group_id)
        .subquery()
    )
    groups = connection.execute(
        select(
            security_groups.c.id,
            projects.c.name,
            security_groups.c.name,
            security_groups.c.description,
            func.coalesce(members.c.n, 0),
        )
        .join(projects, security_groups.c.project_id == projects.c.id)
        .outerjoin(members, members.c.security_group_id == security_groups.c.id)
        .where(*where)
        .order_by(projects.c.name, security_groups.c.name)
    ).all()
    rules: dict[int, list[RuleView]] = {}
    if groups:
        ids = [g[0] for g in groups]
        for group_id, rule in rule_views(connection, security_group_rules.c.group_id.in_(ids)):
            rules.setdefault(group_id, []).append(rule)
    return [
        SecurityGroupView(id_, project, name, description, tuple(rules.get(id_, ())), count)
        for id_, project, name, description, count in groups
    ]
