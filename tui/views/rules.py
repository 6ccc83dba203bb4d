"""The rules of one security group (reached by Enter on a group): add, remove, in bulk."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

from textual.content import Content

from core.secrules import (
    ports_text,
    protocol_text,
    rule_key,
    rule_subject,
    rule_text,
    rule_words,
)
from core.views import RuleView
from tui.views.base import (
    Column,
    Confirm,
    Outcome,
    RowAction,
    Scope,
    Values,
    ViewAction,
    ViewSpec,
    lines,
    text,
)
from tui.views.secgroups import add_rule, rule_form

if TYPE_CHECKING:
    from core.service.api import NetconAPI


@dataclass(frozen=True)
class GroupRule:
    project: str
    group: str
    rule: RuleView


def _rules(api: NetconAPI, scope: Scope) -> Sequence[GroupRule]:
    project, name = str(scope["project"]), str(scope["group"])
    for group in api.list_security_groups(project):
        if group.name == name:
            return [GroupRule(project, name, rule) for rule in group.rules]
    return []


def _subjects(r: GroupRule) -> tuple[str, ...]:
    """The rule as this host's plan names it, and as another host's agent's record does,
    so its row is marked while any host owes it."""
    rule = r.rule
    source = f"{r.project}/{rule.source_group}" if rule.source_group is not None else None
    words = rule_words(
        rule.protocol, rule.from_port, rule.to_port, rule.cidr, source, rule.ethertype
    )
    return (rule_subject(f"{r.project}/{r.group}", words), rule_key(rule.id))


def _ports(rule: RuleView) -> str:
    return ports_text(rule.protocol, rule.from_port, rule.to_port)


def _detail(r: GroupRule) -> Content:
    return lines(
        [
            ("rule", f"#{r.rule.id} of {r.project}/{r.group}"),
            ("family", r.rule.ethertype),
            ("protocol", protocol_text(r.rule.protocol, r.rule.ethertype)),
            ("ports", _ports(r.rule)),
            ("from CIDR", r.rule.cidr),
            ("from group", r.rule.source_group),
        ]
    )


def _add(api: NetconAPI, values: Values, scope: Scope) -> Outcome:
    return add_rule(api, str(scope["project"]), str(scope["group"]), values)


def _remove(api: NetconAPI, r: GroupRule, values: Values) -> Outcome:
    api.remove_security_group_rule(r.rule.id)
    return Outcome(f"Rule {rule_text(r.rule)} removed from {r.project}/{r.group}")


RULES: ViewSpec[GroupRule] = ViewSpec(
    name="rules",
    title="Rules",
    aliases=("rules",),
    noun=("rule", "rules"),
    listed=False,
    columns=(
        Column("id", "#", 5, numeric=True, priority=2),
        Column("family", "Family", 6, priority=3),
        Column("protocol", "Protocol", 8),
        Column("ports", "Ports", 11),
        Column("source", "From", 24, priority=1),
    ),
    cells=lambda r: (
        str(r.rule.id),
        r.rule.ethertype,
        protocol_text(r.rule.protocol, r.rule.ethertype),
        _ports(r.rule),
        r.rule.cidr or f"group {text(r.rule.source_group)}",
    ),
    key=lambda r: r.rule.id,
    subjects=_subjects,
    every_host=True,
    detail=_detail,
    fetch=_rules,
    empty="No rules: nothing is let in. Press a to add one",
    actions=(
        ViewAction(
            "rule.add", "a", "Add rule", footer=1, host_change=False,
            form=lambda s: rule_form(str(s.scope["project"]), str(s.scope["group"])),
            call=_add,
        ),
        RowAction(
            "rule.remove", "D", "Remove rule", footer=2, host_change=False, bulk=True,
            past="removed", name=lambda r: rule_text(r.rule),
            confirm=lambda r, v: Confirm(
                f"Remove this rule from {r.project}/{r.group}?", rule_text(r.rule), "Remove"
            ),
            call=_remove,
        ),
    ),
)
