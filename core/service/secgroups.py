"""Security groups and their rules (the data; enforcement is the host layer's)."""

from __future__ import annotations

from typing import Any

from sqlalchemy import Connection, Row, delete, func, insert, select

from core import validate
from core.errors import Conflict, InvalidInput, NotFound, QuotaExceeded
from core.service.base import ServiceBase
from core.store.schema import (
    instance_security_groups,
    projects,
    security_group_rules,
    security_groups,
)
from core.views import RuleView, SecurityGroupView

PROTOCOLS = ("tcp", "udp", "icmp")


class SecurityGroupService(ServiceBase):
    def create_security_group(
        self, project: str, name: str, description: str = ""
    ) -> SecurityGroupView:
        validate.name("name", name)
        if len(description) > 255 or any(c in description for c in "\n\r\0"):
            raise InvalidInput("description", "must be one line of at most 255 characters")
        with self._change("secgroup.create", f"{project}/{name}") as (connection, audit):
            owner = self._project(connection, project, lock=True)
            count, taken = connection.execute(
                select(
                    func.count(security_groups.c.id),
                    func.count(security_groups.c.id).filter(security_groups.c.name == name),
                ).where(security_groups.c.project_id == owner.id)
            ).one()
            if taken:
                raise Conflict("name", f"{owner.name} already has a security group {name!r}")
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
            audit.before = {"rules": [rule._asdict() for rule in view.rules]}
            connection.execute(delete(security_groups).where(security_groups.c.id == group.id))
        return view

    def add_security_group_rule(
        self,
        project: str,
        group: str,
        protocol: str,
        from_port: int | str,
        to_port: int | str,
        cidr: str | None = None,
        source_group: str | None = None,
    ) -> RuleView:
        if protocol not in PROTOCOLS:
            raise InvalidInput("protocol", f"{protocol!r} must be one of {', '.join(PROTOCOLS)}")
        if protocol == "icmp":
            # nova's convention: type and code, -1 for any.
            low = _icmp("from_port", from_port)
            high = _icmp("to_port", to_port)
        else:
            low = validate.port("from_port", from_port)
            high = validate.port("to_port", to_port)
            if high < low:
                raise InvalidInput("to_port", f"{high} is below from_port {low}")
        if cidr is not None and source_group is not None:
            raise InvalidInput("cidr", "give a CIDR or a source group, not both")
        cidr_text = str(validate.ipv4_network("cidr", cidr)) if cidr is not None else None
        if cidr_text is None and source_group is None:
            cidr_text = "0.0.0.0/0"
        with self._change("secgroup.rule.add", f"{project}/{group}") as (connection, audit):
            parent = self._group(connection, project, group)
            source = (
                self._group(connection, project, source_group, field="source_group")
                if source_group is not None
                else None
            )
            wanted = (protocol, low, high, cidr_text, source.id if source else None)
            existing = connection.execute(
                select(
                    security_group_rules.c.id,
                    security_group_rules.c.protocol,
                    security_group_rules.c.from_port,
                    security_group_rules.c.to_port,
                    security_group_rules.c.cidr,
                    security_group_rules.c.source_group_id,
                ).where(security_group_rules.c.group_id == parent.id)
            ).all()
            for rule in existing:
                if tuple(rule[1:]) == wanted:
                    raise Conflict("rule", f"{group} already has this rule (id {rule.id})")
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
                )
            ).inserted_primary_key  # type: ignore[misc]
            view = _rule_views(connection, security_group_rules.c.id == rule_id)[0][1]
            audit.after = view._asdict()
        return view

    def remove_security_group_rule(self, rule_id: int | str) -> RuleView:
        number = validate.row_id("rule", rule_id)
        with self._change("secgroup.rule.remove", str(number)) as (connection, audit):
            found = _rule_views(connection, security_group_rules.c.id == number)
            if not found:
                raise NotFound("rule", f"no security group rule with id {number}")
            view = found[0][1]
            audit.before = view._asdict()
            connection.execute(
                delete(security_group_rules).where(security_group_rules.c.id == number)
            )
        return view

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


def _icmp(field: str, value: int | str) -> int:
    if value in (-1, "-1"):
        return -1
    return validate.integer(field, value, 0, 255)


def _rule_views(connection: Connection, *where: Any) -> list[tuple[int, RuleView]]:
    """(group id, rule) pairs in rule order."""
    source = security_groups.alias("source")
    rows = connection.execute(
        select(
            security_group_rules.c.group_id,
            security_group_rules.c.id,
            security_group_rules.c.protocol,
            security_group_rules.c.from_port,
            security_group_rules.c.to_port,
            security_group_rules.c.cidr,
            source.c.name,
        )
        .outerjoin(source, security_group_rules.c.source_group_id == source.c.id)
        .where(*where)
        .order_by(security_group_rules.c.id)
    )
    return [(row[0], RuleView(*row[1:])) for row in rows]


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
        for group_id, rule in _rule_views(connection, security_group_rules.c.group_id.in_(ids)):
            rules.setdefault(group_id, []).append(rule)
    return [
        SecurityGroupView(id_, project, name, description, tuple(rules.get(id_, ())), count)
        for id_, project, name, description, count in groups
    ]
