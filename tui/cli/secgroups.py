"""`netcon secgroup create|list|delete` and `netcon secgroup rule add|remove`."""

from __future__ import annotations

import argparse

from core.views import RuleView, SecurityGroupView
from tui.cli.context import Context, column


def _rule(rule: RuleView) -> str:
    ports = (
        "any"
        if rule.from_port == rule.to_port == -1
        else str(rule.from_port)
        if rule.from_port == rule.to_port
        else f"{rule.from_port}-{rule.to_port}"
    )
    source = rule.cidr or f"group {rule.source_group}"
    return f"#{rule.id} {rule.protocol} {ports} from {source}"


def _rules(group: SecurityGroupView) -> str:
    return "; ".join(_rule(r) for r in group.rules) or "-"


COLUMNS = [
    column("PROJECT", "project"),
    column("NAME", "name"),
    column("INSTANCES", "instances"),
    ("RULES", _rules),
]
RULE_COLUMNS = [
    column("ID", "id"),
    column("PROTOCOL", "protocol"),
    column("FROM", "from_port"),
    column("TO", "to_port"),
    column("CIDR", "cidr"),
    column("SOURCE GROUP", "source_group"),
]


def register(commands: argparse._SubParsersAction, common: argparse.ArgumentParser) -> None:
    group = commands.add_parser("secgroup", help="security groups and their rules")
    sub = group.add_subparsers(dest="action", metavar="ACTION", required=True)
    create = sub.add_parser("create", parents=[common], help="create a security group")
    create.add_argument("--project", required=True)
    create.add_argument("name")
    create.add_argument("--description", default="")
    create.set_defaults(handler=create_group)
    listing = sub.add_parser("list", parents=[common], help="list security groups")
    listing.add_argument("--project")
    listing.set_defaults(handler=list_groups)
    remove = sub.add_parser("delete", parents=[common], help="delete an unused security group")
    remove.add_argument("--project", required=True)
    remove.add_argument("name")
    remove.set_defaults(handler=delete_group)

    rule = sub.add_parser("rule", help="add or remove rules")
    rules = rule.add_subparsers(dest="rule_action", metavar="ACTION", required=True)
    add = rules.add_parser("add", parents=[common], help="allow traffic into a group's instances")
    add.add_argument("--project", required=True)
    add.add_argument("group")
    add.add_argument("protocol", help="tcp, udp or icmp")
    add.add_argument("from_port", help="first port (icmp: type, -1 for any)")
    add.add_argument("to_port", help="last port (icmp: code, -1 for any)")
    source = add.add_mutually_exclusive_group()
    source.add_argument("--cidr", help="allowed source range (default 0.0.0.0/0)")
    source.add_argument("--source-group", help="allow members of this group of the project")
    add.set_defaults(handler=add_rule)
    drop = rules.add_parser("remove", parents=[common], help="remove a rule by its id")
    drop.add_argument("rule_id", metavar="ID")
    drop.set_defaults(handler=remove_rule)


def create_group(ctx: Context) -> None:
    a = ctx.args
    ctx.emit(ctx.service.create_security_group(a.project, a.name, a.description), COLUMNS)


def list_groups(ctx: Context) -> None:
    ctx.emit(ctx.service.list_security_groups(project=ctx.args.project), COLUMNS)


def delete_group(ctx: Context) -> None:
    ctx.service.delete_security_group(ctx.args.project, ctx.args.name)
    ctx.say(f"deleted security group {ctx.args.name}", deleted=ctx.args.name)


def add_rule(ctx: Context) -> None:
    a = ctx.args
    rule = ctx.service.add_security_group_rule(
        a.project,
        a.group,
        a.protocol,
        a.from_port,
        a.to_port,
        cidr=a.cidr,
        source_group=a.source_group,
    )
    ctx.emit(rule, RULE_COLUMNS)


def remove_rule(ctx: Context) -> None:
    ctx.service.remove_security_group_rule(ctx.args.rule_id)
    ctx.say(f"removed rule {ctx.args.rule_id}", removed=ctx.args.rule_id)
