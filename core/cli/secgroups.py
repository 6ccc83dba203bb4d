"""`netcon secgroup create|list|delete|join|leave|rules|explain` and
`netcon secgroup rule add|remove`."""

from __future__ import annotations

from core.cli.context import Context
from core.cli.output import col
from core.cli.spec import Group, arg
from core.secrules import protocol_text, rule_text

COLUMNS = (
    col("PROJECT"),
    col("NAME"),
    col("INSTANCES"),
    col("RULES", text=lambda g: "; ".join(rule_text(r) for r in g.rules) or "-"),
)
DETAIL = (*COLUMNS[:3], col("DESCRIPTION"), COLUMNS[3])
RULE_COLUMNS = (
    col("ID"),
    col("ETHERTYPE"),
    col("PROTOCOL", text=lambda r: protocol_text(r.protocol, r.ethertype)),
    col("FROM", "from_port"),
    col("TO", "to_port"),
    col("CIDR"),
    col("SOURCE GROUP"),
)

PROTOCOLS = ("tcp", "udp", "icmp", "icmpv6", "any")
EXPLAIN = (
    col("INSTANCE"),
    col("ADDRESS"),
    col("PACKET"),
    col("ALLOWED"),
    col("DECIDED BY"),
    col("RULE", value=lambda v: v.rule.id if v.rule else None),
)
INGRESS = (
    col("GROUP"),
    col("ID"),
    col("ETHERTYPE"),
    col("PROTOCOL", text=lambda r: protocol_text(r.protocol, r.ethertype)),
    col("FROM", "from_port"),
    col("TO", "to_port"),
    col("SOURCE", value=lambda r: r.cidr or f"group {r.source_group}"),
)

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


rules = group.group("rule", "list, add or remove rules")


@rules.command(
    "add",
    "allow traffic into a group's instances",
    arg("--project", required=True, complete="project"),
    arg("group", complete="secgroup"),
    arg(
        "protocol",
        complete=PROTOCOLS,
        help="tcp, udp, icmp, icmpv6 (icmp of an IPv6 rule) or any",
    ),
    arg("from_port", nargs="?", help="first port (icmp: type, -1 or none for any)"),
    arg("to_port", nargs="?", help="last port (default: from_port; icmp: code)"),
    arg("--cidr", help="allowed source range (default 0.0.0.0/0, or ::/0 for IPv6)"),
    arg("--source-group", complete="secgroup", help="allow members of this group of the project"),
    arg(
        "--ethertype",
        complete=("IPv4", "IPv6"),
        help="the family the rule judges: IPv4 or IPv6 (default: the CIDR's, else IPv4)",
    ),
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
        ethertype=a.ethertype,
    )
    ctx.output.one(rule, RULE_COLUMNS)


@rules.command(
    "list",
    "list a group's rules, both families",
    arg("--project", required=True, complete="project"),
    arg("group", complete="secgroup"),
)
def list_rules(ctx: Context) -> None:
    ctx.output.rows(
        ctx.service.list_security_group_rules(ctx.args.project, ctx.args.group), RULE_COLUMNS
    )


@rules.command("remove", "remove a rule by its id", arg("rule_id", metavar="ID"))
def remove_rule(ctx: Context) -> None:
    gone = ctx.service.remove_security_group_rule(ctx.args.rule_id)
    ctx.output.outcome(gone, RULE_COLUMNS, f"removed rule {rule_text(gone)}")


@group.command(
    "join",
    "put an instance into one more of its project's groups",
    arg("instance", complete="instance"),
    arg("group", complete="secgroup"),
)
def join_group(ctx: Context) -> None:
    a = ctx.args
    groups = ctx.service.add_instance_security_group(a.instance, a.group)
    ctx.output.done(
        f"{a.instance} is now in {', '.join(groups)}",
        {"instance": a.instance, "security_groups": list(groups)},
    )


@group.command(
    "leave",
    "take an instance out of one of its groups",
    arg("instance", complete="instance"),
    arg("group", complete="secgroup"),
)
def leave_group(ctx: Context) -> None:
    a = ctx.args
    groups = ctx.service.remove_instance_security_group(a.instance, a.group)
    where = ", ".join(groups) or "no group (only replies and DHCP reach it)"
    ctx.output.done(
        f"{a.instance} is now in {where}",
        {"instance": a.instance, "security_groups": list(groups)},
    )


@group.command(
    "rules",
    "the rules that let traffic into an instance, from all of its groups",
    arg("instance", complete="instance"),
)
def instance_rules(ctx: Context) -> None:
    view = ctx.service.instance_ingress(ctx.args.instance)
    if ctx.json:
        ctx.output.document(view)
        return
    ports = ", ".join(f"{p.port} ({p.address})" for p in view.ports) or "-"
    ctx.out.write(
        f"{view.instance} ({view.project}), groups {', '.join(view.groups) or '-'}, port {ports}\n"
    )
    if view.rules:
        ctx.output.rows(view.rules, INGRESS)
    ctx.out.write("".join(f"always: {line}\n" for line in view.always))
    ctx.out.write(f"everything else: {view.otherwise}\n")


@group.command(
    "explain",
    "would a new connection reach an instance, and which rule decides",
    arg("instance", complete="instance"),
    arg("--from", dest="source", required=True, metavar="ADDRESS"),
    arg(
        "--proto",
        required=True,
        choices=("tcp", "udp", "icmp", "icmpv6"),
        help="icmp from an IPv6 address is ICMPv6",
    ),
    arg("--port", help="destination port (tcp, udp)"),
    arg("--icmp-type", help="ICMP type (default echo request: 8, or 128 for ICMPv6)"),
    arg("--icmp-code", help="ICMP code (default 0)"),
)
def explain(ctx: Context) -> None:
    a = ctx.args
    verdict = ctx.service.explain_ingress(
        a.instance,
        a.source,
        a.proto,
        a.port,
        icmp_type=a.icmp_type,
        icmp_code=a.icmp_code,
    )
    ctx.output.one(verdict, EXPLAIN)
