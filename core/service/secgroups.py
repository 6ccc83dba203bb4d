"""Security groups and their rules (the data; enforcement is the host layer's)."""

from __future__ import annotations

from sqlalchemy import func, select
from sqlalchemy.orm import selectinload

from core import validate
from core.errors import Conflict, InvalidInput, NotFound, QuotaExceeded
from core.service.base import ServiceBase
from core.store.models import (
    Project,
    SecurityGroup,
    SecurityGroupRule,
    instance_security_groups,
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
        with self._change("secgroup.create", f"{project}/{name}") as (session, audit):
            owner = self._project(session, project, lock=True)
            if session.scalars(
                select(SecurityGroup).where(
                    SecurityGroup.project_id == owner.id, SecurityGroup.name == name
                )
            ).first():
                raise Conflict("name", f"{owner.name} already has a security group {name!r}")
            quota = self.settings.quota_security_groups
            count = session.scalar(
                select(func.count(SecurityGroup.id)).where(SecurityGroup.project_id == owner.id)
            )
            if quota >= 0 and (count or 0) >= quota:
                raise QuotaExceeded(
                    f"project {owner.name}: security group quota of {quota} reached "
                    "(quota_security_groups)"
                )
            session.add(SecurityGroup(project_id=owner.id, name=name, description=description))
            audit.after = {"description": description}
        return next(g for g in self.list_security_groups(project) if g.name == name)

    def list_security_groups(self, project: str | None = None) -> list[SecurityGroupView]:
        with self.db.read() as session:
            members: dict[int, int] = dict(
                session.execute(
                    select(
                        instance_security_groups.c.security_group_id,
                        func.count(instance_security_groups.c.instance_id),
                    ).group_by(instance_security_groups.c.security_group_id)
                ).all()
            )
            query = (
                select(SecurityGroup)
                .join(Project, SecurityGroup.project_id == Project.id)
                .options(
                    selectinload(SecurityGroup.rules).selectinload(SecurityGroupRule.source_group),
                    selectinload(SecurityGroup.project),
                )
                .order_by(Project.name, SecurityGroup.name)
            )
            if project is not None:
                query = query.where(SecurityGroup.project_id == self._project(session, project).id)
            return [
                SecurityGroupView(
                    id=g.id,
                    project=g.project.name,
                    name=g.name,
                    description=g.description,
                    rules=tuple(_rule_view(r) for r in g.rules),
                    instances=members.get(g.id, 0),
                )
                for g in session.scalars(query)
            ]

    def delete_security_group(self, project: str, name: str) -> None:
        with self._change("secgroup.delete", f"{project}/{name}") as (session, audit):
            group = self._group(session, project, name)
            if group.name == "default":
                raise Conflict("name", "every project keeps its default security group")
            used = session.scalar(
                select(func.count()).where(instance_security_groups.c.security_group_id == group.id)
            )
            if used:
                raise Conflict("name", f"{name} is used by {used} instance(s)")
            audit.before = {"rules": [_rule_view(r).to_dict() for r in group.rules]}
            session.delete(group)

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
        with self._change("secgroup.rule.add", f"{project}/{group}") as (session, audit):
            parent = self._group(session, project, group)
            source = (
                self._group(session, project, source_group, field="source_group")
                if source_group is not None
                else None
            )
            for rule in parent.rules:
                if (rule.protocol, rule.from_port, rule.to_port, rule.cidr) == (
                    protocol,
                    low,
                    high,
                    cidr_text,
                ) and rule.source_group_id == (source.id if source else None):
                    raise Conflict("rule", f"{group} already has this rule (id {rule.id})")
            quota = self.settings.quota_security_group_rules
            if quota >= 0 and len(parent.rules) >= quota:
                raise QuotaExceeded(
                    f"security group {group}: rule quota of {quota} reached "
                    "(quota_security_group_rules)"
                )
            rule = SecurityGroupRule(
                group_id=parent.id,
                protocol=protocol,
                from_port=low,
                to_port=high,
                cidr=cidr_text,
                source_group_id=source.id if source else None,
            )
            session.add(rule)
            session.flush()
            session.refresh(rule, ["source_group"])
            view = _rule_view(rule)
            audit.after = view.to_dict()
        return view

    def remove_security_group_rule(self, rule_id: int | str) -> None:
        number = validate.integer("rule", rule_id, 1, 2**31 - 1)
        with self._change("secgroup.rule.remove", str(number)) as (session, audit):
            rule = session.get(SecurityGroupRule, number)
            if rule is None:
                raise NotFound("rule", f"no security group rule with id {number}")
            audit.before = _rule_view(rule).to_dict()
            session.delete(rule)

    def _group(self, session, project: str, name: str, field: str = "group") -> SecurityGroup:  # type: ignore[no-untyped-def]
        owner = self._project(session, project)
        validate.name(field, name)
        group = session.scalars(
            select(SecurityGroup).where(
                SecurityGroup.project_id == owner.id, SecurityGroup.name == name
            )
        ).first()
        if group is None:
            raise NotFound(field, f"{owner.name} has no security group named {name!r}")
        return group


def _icmp(field: str, value: int | str) -> int:
    if value in (-1, "-1"):
        return -1
    return validate.integer(field, value, 0, 255)


def _rule_view(rule: SecurityGroupRule) -> RuleView:
    return RuleView(
        id=rule.id,
        protocol=rule.protocol,
        from_port=rule.from_port,
        to_port=rule.to_port,
        cidr=rule.cidr,
        source_group=rule.source_group.name if rule.source_group else None,
    )
