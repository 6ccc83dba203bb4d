"""What each view of the console lists: its columns, where its rows come from, its detail
pane, its command-line names and where Enter leads.

Everything here is a pure function of the service's views, so the screen stays generic.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from textual.content import Content

from core.views import (
    AuditView,
    FixedIPView,
    FloatingIPView,
    HostView,
    InstanceView,
    NetworkView,
    Page,
    ProjectView,
    SecurityGroupView,
    VpnView,
)
from tui.widgets.virtual_table import Column, Row

Scope = dict[str, Any]


@dataclass(frozen=True)
class Drill:
    """Where Enter on a row leads: the target view and the scope it is narrowed to."""

    resource: str
    scope: Scope
    crumb: str


@dataclass(frozen=True)
class Resource:
    name: str
    title: str
    aliases: tuple[str, ...]
    columns: tuple[Column, ...]
    cells: Callable[[Any], tuple[str, ...]]
    key: Callable[[Any], Any]
    detail: Callable[[Any], Content]
    # A small listing: every row at once. ``None`` for a paged one.
    fetch: Callable[[Any, Scope], Sequence[Any]] | None = None
    # A large listing: ``(service, scope, search, offset, limit) -> Page``.
    fetch_page: Callable[[Any, Scope, str, int, int], Page] | None = None
    drill: Callable[[Any], Drill | None] = field(default=lambda item: None)

    def row(self, item: Any) -> Row:
        return Row(self.key(item), self.cells(item), item)

    @property
    def paged(self) -> bool:
        return self.fetch_page is not None


def _text(value: object) -> str:
    if value is None:
        return "-"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, datetime):
        return value.strftime("%Y-%m-%d %H:%M:%S")
    return str(value)


def _lines(pairs: Sequence[tuple[str, object]]) -> Content:
    """Label/value lines. Built as Content, never as markup: values such as audit JSON
    hold brackets that markup would try to read as tags."""
    width = max(len(label) for label, _ in pairs)
    parts: list[str | tuple[str, str]] = []
    for number, (label, value) in enumerate(pairs):
        if number:
            parts.append("\n")
        parts += [(label.ljust(width), "bold"), "  ", _text(value)]
    return Content.assemble(*parts)


# -- projects -----------------------------------------------------------------------------


def _project_detail(p: ProjectView) -> Content:
    return _lines(
        [
            ("project", p.name),
            ("manager", p.manager),
            ("network", p.network),
            ("instances", p.instances),
            ("floating IPs", p.floating_ips),
            ("created", p.created_at),
        ]
    )


PROJECTS = Resource(
    name="projects",
    title="Projects",
    aliases=("projects", "project", "proj"),
    columns=(
        Column("name", "Name", 16),
        Column("manager", "Manager", 8),
        Column("network", "Network", 18),
        Column("instances", "Inst", 5, numeric=True),
        Column("floating", "FIPs", 5, numeric=True),
    ),
    cells=lambda p: (p.name, p.manager, _text(p.network), str(p.instances), str(p.floating_ips)),
    key=lambda p: p.id,
    detail=_project_detail,
    fetch=lambda service, scope: service.list_projects(),
    drill=lambda p: Drill("networks", {"project": p.name}, p.name),
)


# -- networks -----------------------------------------------------------------------------


def _segment(n: NetworkView) -> str:
    if n.vlan is None:
        return "-"
    return f"vxlan {n.vlan}" if n.segmentation == "vxlan" else str(n.vlan)


def _network_detail(n: NetworkView) -> Content:
    vpn = None
    if n.vpn_public_address:
        vpn = f"{n.vpn_public_address}:{n.vpn_public_port} → {n.vpn_private_address}"
    return _lines(
        [
            ("network", f"{n.cidr}  (id {n.id}, {n.label})"),
            ("manager", n.manager),
            ("segment", f"{n.segmentation or 'none'} {_text(n.vlan)}"),
            ("bridge", n.bridge + (f" (port {n.bridge_interface})" if n.bridge_interface else "")),
            ("gateway", n.gateway),
            ("netmask", n.netmask),
            ("broadcast", n.broadcast),
            ("dhcp start", n.dhcp_start),
            ("dns", ", ".join(d for d in (n.dns1, n.dns2) if d) or None),
            ("project", n.project),
            ("host", n.host),
            ("vpn", vpn),
            ("addresses", f"{n.used} used, {n.reserved} reserved, {n.free} free of {n.size}"),
        ]
    )


NETWORKS = Resource(
    name="networks",
    title="Networks",
    aliases=("networks", "network", "net", "vlans", "vlan", "subnets", "subnet"),
    columns=(
        Column("cidr", "CIDR", 18),
        Column("vlan", "VLAN", 5, numeric=True),
        Column("manager", "Manager", 8),
        Column("project", "Project", 12),
        Column("used", "Used", 6, numeric=True),
        Column("free", "Free", 6, numeric=True),
        Column("bridge", "Bridge", 8),
        Column("gateway", "Gateway", 15),
        Column("host", "Host", 10),
        Column("label", "Label", 12),
    ),
    cells=lambda n: (
        n.cidr,
        _segment(n),
        n.manager,
        _text(n.project),
        str(n.used),
        str(n.free),
        n.bridge,
        n.gateway,
        _text(n.host),
        n.label,
    ),
    key=lambda n: n.id,
    detail=_network_detail,
    fetch=lambda service, scope: service.list_networks(project=scope.get("project")),
    drill=lambda n: Drill("fixed", {"network": n.id, "cidr": n.cidr}, n.cidr),
)


# -- fixed IPs ----------------------------------------------------------------------------


def _fixed_detail(f: FixedIPView) -> Content:
    return _lines(
        [
            ("address", f.address),
            ("network", f.network),
            ("state", f.state),
            ("instance", f.instance),
            ("project", f.project),
            ("mac", f.mac),
            ("reserved", f.reserved),
            ("allocated", f.allocated),
            ("leased", f.leased),
        ]
    )


def _fixed_page(service: Any, scope: Scope, search: str, offset: int, limit: int) -> Page:
    page: Page = service.list_fixed_ips(
        network=scope.get("network"), search=search or None, offset=offset, limit=limit
    )
    return page


FIXED = Resource(
    name="fixed",
    title="Fixed IPs",
    aliases=("fixed", "fixedips", "fixed-ips", "ips"),
    columns=(
        Column("address", "Address", 15),
        Column("state", "State", 9),
        Column("instance", "Instance", 14),
        Column("mac", "MAC", 17),
        Column("network", "Network", 18),
    ),
    cells=lambda f: (f.address, f.state, _text(f.instance), _text(f.mac), f.network),
    key=lambda f: f.id,
    detail=_fixed_detail,
    fetch_page=_fixed_page,
)


# -- floating IPs -------------------------------------------------------------------------


def _floating_detail(f: FloatingIPView) -> Content:
    return _lines(
        [
            ("address", f.address),
            ("pool", f.pool),
            ("host", f"{f.host} ({f.interface})"),
            ("project", f.project),
            ("instance", f.instance),
            ("fixed IP", f.fixed_address),
            ("auto-assigned", f.auto_assigned),
        ]
    )


FLOATING = Resource(
    name="floating",
    title="Floating IPs",
    aliases=("floating", "floatingips", "fip", "fips"),
    columns=(
        Column("address", "Address", 15),
        Column("project", "Project", 12),
        Column("instance", "Instance", 14),
        Column("fixed", "Fixed IP", 15),
        Column("pool", "Pool", 8),
        Column("host", "Host", 10),
    ),
    cells=lambda f: (
        f.address,
        _text(f.project),
        _text(f.instance),
        _text(f.fixed_address),
        f.pool,
        f.host,
    ),
    key=lambda f: f.id,
    detail=_floating_detail,
    fetch=lambda service, scope: service.list_floating_ips(),
    drill=lambda f: Drill("instances", {"instance": f.instance}, f.address) if f.instance else None,
)


# -- VPNs ---------------------------------------------------------------------------------


def _public(v: VpnView) -> str:
    if not v.public_address:
        return "-"
    return f"{v.public_address}:{v.public_port}"


VPNS = Resource(
    name="vpn",
    title="VPNs",
    aliases=("vpn", "vpns", "cloudpipe"),
    columns=(
        Column("project", "Project", 12),
        Column("public", "Public", 21),
        Column("private", "Private", 15),
        Column("state", "State", 8),
        Column("network", "Network", 18),
    ),
    cells=lambda v: (
        _text(v.project),
        _public(v),
        _text(v.private_address),
        v.state,
        v.network,
    ),
    key=lambda v: v.network,
    detail=lambda v: _lines(
        [
            ("project", v.project),
            ("network", v.network),
            ("public", _public(v)),
            ("private", v.private_address),
            ("state", v.state),
        ]
    ),
    fetch=lambda service, scope: service.list_vpns(),
)


# -- instances ----------------------------------------------------------------------------


def _instance_detail(i: InstanceView) -> Content:
    pairs: list[tuple[str, object]] = [
        ("instance", i.name),
        ("project", i.project),
        ("host", i.host),
        ("groups", ", ".join(i.security_groups) or None),
        ("created", i.created_at),
    ]
    for a in i.addresses:
        floating = f"  ⇄ {a.floating}" if a.floating else ""
        pairs.append((a.network, f"{a.address}  {a.mac}{floating}"))
    return _lines(pairs)


def _instances(service: Any, scope: Scope) -> Sequence[InstanceView]:
    instances: Sequence[InstanceView] = service.list_instances(project=scope.get("project"))
    if scope.get("instance"):
        instances = [i for i in instances if i.name == scope["instance"]]
    return instances


INSTANCES = Resource(
    name="instances",
    title="Instances",
    aliases=("instances", "instance", "servers", "vm", "vms"),
    columns=(
        Column("name", "Name", 14),
        Column("project", "Project", 12),
        Column("addresses", "Addresses", 15),
        Column("floating", "Floating", 15),
        Column("host", "Host", 10),
        Column("groups", "Groups", 16),
    ),
    cells=lambda i: (
        i.name,
        i.project,
        ", ".join(a.address for a in i.addresses) or "-",
        ", ".join(a.floating for a in i.addresses if a.floating) or "-",
        _text(i.host),
        ", ".join(i.security_groups) or "-",
    ),
    key=lambda i: i.id,
    detail=_instance_detail,
    fetch=_instances,
)


# -- security groups ----------------------------------------------------------------------


def rule_text(rule: Any) -> str:
    ports = str(rule.from_port) if rule.from_port == rule.to_port else (
        f"{rule.from_port}-{rule.to_port}"
    )
    source = rule.cidr or f"group {rule.source_group}"
    return f"#{rule.id} {rule.protocol} {ports} from {source}"


def _group_detail(g: SecurityGroupView) -> Content:
    head = _lines(
        [
            ("group", f"{g.name} (project {g.project})"),
            ("description", g.description or None),
            ("instances", g.instances),
            ("rules", len(g.rules)),
        ]
    )
    rules = "\n".join(f"  {rule_text(r)}" for r in g.rules) or "  (no rules)"
    return Content.assemble(head, "\n", rules)


SECGROUPS = Resource(
    name="secgroups",
    title="Security groups",
    aliases=("secgroups", "secgroup", "sg", "security-groups"),
    columns=(
        Column("project", "Project", 12),
        Column("name", "Name", 14),
        Column("rules", "Rules", 5, numeric=True),
        Column("instances", "Inst", 5, numeric=True),
        Column("description", "Description", 24),
    ),
    cells=lambda g: (g.project, g.name, str(len(g.rules)), str(g.instances), g.description),
    key=lambda g: g.id,
    detail=_group_detail,
    fetch=lambda service, scope: service.list_security_groups(project=scope.get("project")),
)


# -- hosts --------------------------------------------------------------------------------


@dataclass(frozen=True)
class HostRow:
    """A host and, for the host the console runs on, what ``host apply`` would do."""

    host: HostView
    plan: tuple[str, ...] | None = None
    problems: tuple[str, ...] = ()
    plan_error: str | None = None

    @property
    def name(self) -> str:
        return self.host.name


def _host_detail(row: HostRow) -> Content:
    h = row.host
    parts: list[str | Content | tuple[str, str]] = [
        _lines(
            [
                ("host", h.name),
                ("role", h.role),
                ("alive", h.alive),
                ("heartbeat", h.last_heartbeat),
                ("networks", h.networks),
                ("floating IPs", h.floating_ips),
            ]
        )
    ]
    if row.plan_error:
        parts += ["\n", ("pending plan", "bold"), f"  could not be read: {row.plan_error}"]
    elif row.plan is not None:
        parts += [
            "\n", ("pending plan", "bold"),
            f"  {len(row.plan)} operation(s); P shows it, A applies it",
        ]
        parts += [part for problem in row.problems for part in ("\n  ", (f"✗ {problem}", "red"))]
        parts += [f"\n  {line}" for line in row.plan]
    return Content.assemble(*parts)


def _hosts(service: Any, scope: Scope) -> list[HostRow]:
    rows = []
    for host in service.list_hosts():
        if scope.get("host_plans") and host.name == service.settings.host:
            rows.append(_with_plan(service, host))
        else:
            rows.append(HostRow(host))
    return rows


def _with_plan(service: Any, host: HostView) -> HostRow:
    """Plan for this machine; only reads netlink, nftables and dnsmasq's files."""
    from core.errors import NetconError

    try:
        plan = service.host_plan()
    except NetconError as exc:
        return HostRow(host, plan_error=exc.message)
    except OSError as exc:
        return HostRow(host, plan_error=str(exc))
    return HostRow(host, tuple(plan.describe()), tuple(plan.problems))


HOSTS = Resource(
    name="hosts",
    title="Hosts",
    aliases=("hosts", "host", "nodes"),
    columns=(
        Column("name", "Name", 14),
        Column("role", "Role", 8),
        Column("alive", "Alive", 5),
        Column("networks", "Nets", 5, numeric=True),
        Column("floating", "FIPs", 5, numeric=True),
        Column("plan", "Plan", 5, numeric=True),
        Column("heartbeat", "Heartbeat", 19),
    ),
    cells=lambda r: (
        r.host.name,
        r.host.role,
        _text(r.host.alive),
        str(r.host.networks),
        str(r.host.floating_ips),
        "-" if r.plan is None else str(len(r.plan)),
        _text(r.host.last_heartbeat),
    ),
    key=lambda r: r.host.name,
    detail=_host_detail,
    fetch=_hosts,
)


# -- audit --------------------------------------------------------------------------------


def _audit_detail(a: AuditView) -> Content:
    return _lines(
        [
            ("event", a.id),
            ("at", a.at),
            ("actor", a.actor),
            ("action", a.action),
            ("target", a.target),
            ("before", a.before),
            ("after", a.after),
        ]
    )


AUDIT = Resource(
    name="audit",
    title="Audit log",
    aliases=("audit", "log", "events"),
    columns=(
        Column("id", "#", 5, numeric=True),
        Column("at", "At", 19),
        Column("actor", "Actor", 10),
        Column("action", "Action", 18),
        Column("target", "Target", 24),
    ),
    cells=lambda a: (str(a.id), _text(a.at), a.actor, a.action, a.target),
    key=lambda a: a.id,
    detail=_audit_detail,
    fetch=lambda service, scope: service.list_audit(limit=1000),
)


RESOURCES: dict[str, Resource] = {
    r.name: r
    for r in (PROJECTS, NETWORKS, FIXED, FLOATING, VPNS, INSTANCES, SECGROUPS, HOSTS, AUDIT)
}

ALIASES: dict[str, str] = {alias: r.name for r in RESOURCES.values() for alias in r.aliases}


def resolve(word: str) -> Resource | None:
    """The view a command-line word names (``vlans`` → networks), or None."""
    name = ALIASES.get(word.strip().lstrip(":").lower())
    return RESOURCES[name] if name else None
