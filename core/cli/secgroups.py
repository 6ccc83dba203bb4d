"""`netcon secgroup create|list|show|delete` and `netcon secgroup rule add|remove`."""

from __future__ import annotations

from typing import Any

from core.cli.context import Context
from core.cli.output import col
from core.cli.spec import Group, arg


def rule_text(rule: Any) -> str:
    if rule.from_port == rule.to_port == -1:
        ports = "any"
    elif rule.from_port == rule.to_port:
        ports = str(rule.from_port)
    else:
        ports = f"{rule.from_port}-{rule.to_port}"
    source = rule.cidr or f"group {rule.source_group}"
    return f"#{rule.id} {rule.protocol} {ports} from {source}"


COLUMNS = (
    col("PROJECT"),
    col("NAME"),
    col("INSTANCES"),
    col("RULES", text=lambda g: "; ".join(rule_text(r) for r in g.rules) or "-"),
)
DETAIL = (*COLUMNS[:3], col("DESCRIPTION"), COLUMNS[3])
RULE_COLUMNS = (
    col("ID"),
    col("PROTOCOL"),
    col("FROM", "from_port"),
    col("TO", "to_port"),
    col("CIDR"),
    col("SOURCE GROUP"),
)

PROTOCOLS = ("tcp", "udp", "icmp")

group = Group("secgroup", "security groups and their rules")


@group.command(
    "create",
    "create a security group",
    arg("--project", required=True, complete="project"),
    arg("name"),
    arg("--description", default=""),
)
def create_group(ctx: Context) -> None:
    a = ctx.args
    ctx.output.one(ctx.service.create_security_group(a.project, a.name, a.description), DETAIL)


@group.command("list", "list security groups", arg("--project", complete="project"))
def list_groups(ctx: Context) -> None:
    ctx.output.rows(ctx.service.list_security_groups(project=ctx.args.project), COLUMNS)


@group.command(
    "delete",
    "delete an unused security group",
    arg("--project", required=True, complete="project"),
    arg("name", complete="secgroup"),
)
def delete_group(ctx: Context) -> None:
    gone = ctx.service.delete_security_group(ctx.args.project, ctx.args.name)
    ctx.output.outcome(gone, DETAIL, f"deleted security group {gone.name} of {gone.project}")


rules = group.group("rule", "add or remove rules")


@rules.command(
    "add",
    "allow traffic into a group's instances",
    arg("--project", required=True, complete="project"),
    arg("group", complete="secgroup"),
    arg("protocol", complete=PROTOCOLS, help="tcp, udp or icmp"),
    arg("from_port", help="first port (icmp: type, -1 for any)"),
    arg("to_port", help="last port (icmp: code, -1 for any)"),
    arg("--cidr", help="allowed source range (default 0.0.0.0/0)"),
    arg("--source-group", complete="secgroup", help="allow members of this group of the project"),
)
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
    ctx.output.one(rule, RULE_COLUMNS)


@rules.command("remove", "remove a rule by its id", arg("rule_id", metavar="ID"))
def remove_rule(ctx: Context) -> None:
    gone = ctx.service.remove_security_group_rule(ctx.args.rule_id)
    ctx.output.outcome(gone, RULE_COLUMNS, f"removed rule {rule_text(gone)}")
