"""Networks: VLAN, FlatDHCP and Flat subnets, their bridges and the host that carries them."""

from __future__ import annotations

import ipaddress
from collections.abc import Sequence
from functools import partial
from typing import TYPE_CHECKING

from textual.content import Content

from core import validate
from core.managers.capabilities import capabilities
from core.views import NetworkView
from tui.views.base import (
    Column,
    Confirm,
    Drill,
    Field,
    Form,
    Outcome,
    RowAction,
    Scope,
    Situation,
    Values,
    ViewAction,
    ViewSpec,
    choice,
    lines,
    text,
)

if TYPE_CHECKING:
    from core.service.api import NetconAPI

MANAGERS = ("vlan", "flatdhcp", "flat")
SEGMENTATIONS = ("vlan", "vxlan")


def _segment(n: NetworkView) -> str:
    """The VLAN column: an 802.1Q id as the seed showed it, a VXLAN id by the name of
    its link on the host (``vx102``), which fits the column where "vxlan 102" was cut."""
    if n.vlan is None:
        return "-"
    return f"vx{n.vlan}" if n.segmentation == "vxlan" else str(n.vlan)


def _segment_words(n: NetworkView) -> str:
    """The segment in words, for a detail: "vlan 100", "vxlan 102", or "none" (a flat
    network's bridge is its only segment)."""
    return f"{n.segmentation or 'vlan'} {n.vlan}" if n.vlan is not None else "none"


def _detail(n: NetworkView) -> Content:
    vpn = None
    if n.vpn_public_address:
        vpn = f"{n.vpn_public_address}:{n.vpn_public_port} → {n.vpn_private_address}"
    return lines(
        [
            ("network", f"{n.cidr}  (id {n.id}, {n.label})"),
            ("manager", n.manager),
            ("segment", _segment_words(n)),
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


def _networks(api: NetconAPI, scope: Scope) -> Sequence[NetworkView]:
    project = scope.get("project")
    networks = api.list_networks(project=str(project) if project else None)
    if scope.get("host"):
        return [n for n in networks if n.host == scope["host"]]
    return networks


def _create_form(situation: Situation) -> Form:
    s = situation.settings
    return Form(
        "New network (nova-network `network create`)",
        (
            Field("fixed_range", "Fixed range",
                  lambda t: str(validate.ipv4_network("fixed_range", t)),
                  placeholder=s.fixed_range, optional=True),
            Field("num_networks", "Networks",
                  lambda t: validate.integer("num_networks", t, 1, 4094),
                  placeholder=str(s.num_networks), optional=True),
            Field("network_size", "Size", lambda t: validate.network_size("network_size", t, 4),
                  placeholder=str(s.network_size), optional=True),
            Field("vlan_start", "VLAN start", partial(validate.vlan_id, "vlan_start"),
                  placeholder=str(s.vlan_start), optional=True),
            Field("vpn_start", "VPN port start", partial(validate.port, "vpn_start"),
                  placeholder=str(s.vpn_start), optional=True),
            Field("manager", "Manager", choice("manager", MANAGERS), placeholder="vlan",
                  optional=True, choices=MANAGERS),
            Field("label", "Label", partial(validate.name, "label"), optional=True),
            Field("bridge", "Bridge", partial(validate.ifname, "bridge"), optional=True,
                  placeholder="br<vlan>"),
            Field("bridge_interface", "Bridge iface",
                  partial(validate.ifname, "bridge_interface"), optional=True,
                  placeholder=s.vlan_interface),
            Field("dns", "DNS", lambda t: str(validate.ipv4_address("dns", t)), optional=True),
            Field("segmentation", "Segmentation", choice("segmentation", SEGMENTATIONS),
                  placeholder=s.segmentation, optional=True, choices=SEGMENTATIONS),
        ),
        "Create",
        "Empty fields take the configured default shown in grey.",
    )


def _create(api: NetconAPI, values: Values, scope: Scope) -> Outcome:
    created = api.create_networks(
        values.optional("fixed_range"),
        values.optional("num_networks"),
        values.optional("network_size"),
        values.optional("vlan_start"),
        values.optional("vpn_start"),
        label=values.optional("label"),
        manager=values.optional("manager"),
        bridge=values.optional("bridge"),
        bridge_interface=values.optional("bridge_interface"),
        dns=values.optional("dns"),
        segmentation=values.optional("segmentation"),
    )
    return Outcome("Created " + ", ".join(n.cidr for n in created))


def _refuse_delete(n: NetworkView) -> str | None:
    if n.used:
        return (
            f"{n.cidr} has {n.used} address(es) in use by instances or DHCP leases: "
            "terminate them first"
        )
    return None


def _delete(api: NetconAPI, n: NetworkView, values: Values) -> Outcome:
    gone = api.delete_network(n.id)
    return Outcome(f"Network {gone.cidr} deleted")


def _vpn(n: NetworkView) -> str:
    if n.vpn_public_port is None:
        return "none"
    public = n.vpn_public_address or "the network host's address"
    return f"{public} port {n.vpn_public_port}, inside at {n.vpn_private_address or '-'}"


def _owns(api: NetconAPI, n: NetworkView) -> list[tuple[str, object]]:
    """What a network carries beyond its own fields: where its frames go, what DHCP
    hands out, and the instances and floating IPs behind it."""
    network = ipaddress.ip_network(n.cidr)
    on_it = [
        (i, a) for i in api.list_instances() for a in i.addresses if a.network == n.cidr
    ]
    floating = [a.floating for _, a in on_it if a.floating]
    segment = _segment_words(n)
    if not capabilities(n.manager).serves_dhcp:
        dhcp = "none (Flat: the address is written into the image)"
    else:
        dhcp = f"{n.dhcp_start} – {network.broadcast_address - 1}"
    dns = ", ".join(d for d in (n.dns1, n.dns2) if d) or "the host's resolvers"
    return [
        ("bridge", f"{n.bridge}, uplink "
                   + (n.bridge_interface or "the host's configured interface")),
        ("segment", segment),
        ("DHCP range", dhcp),
        ("MTU", n.mtu),
        ("DNS", dns),
        ("host", n.host or "not yet picked (the first launch picks it)"),
        ("project", n.project or "shared"),
        ("instances", f"{len({i.name for i, _ in on_it})}: "
                      + (", ".join(sorted({i.name for i, _ in on_it})) or "none")),
        ("floating IPs", ", ".join(floating) or "none"),
        ("VPN", _vpn(n)),
    ]


NETWORKS: ViewSpec[NetworkView] = ViewSpec(
    name="networks",
    title="Networks",
    aliases=("networks", "network", "net", "vlans", "vlan", "subnets", "subnet"),
    noun=("network", "networks"),
    columns=(
        Column("cidr", "CIDR", 18),
        Column("vlan", "VLAN", 5, numeric=True, priority=1),
        Column("manager", "Manager", 8, priority=3),
        Column("project", "Project", 12, priority=1, min_width=8),
        Column("used", "Used", 6, numeric=True, priority=4),
        Column("free", "Free", 6, numeric=True, priority=4),
        Column("bridge", "Bridge", 8, priority=2, min_width=6),
        Column("gateway", "Gateway", 15, priority=6),
        Column("host", "Host", 10, priority=2, min_width=8),
        Column("label", "Label", 12, priority=5),
    ),
    cells=lambda n: (
        n.cidr,
        _segment(n),
        n.manager,
        text(n.project),
        str(n.used),
        str(n.free),
        n.bridge,
        n.gateway,
        text(n.host),
        n.label,
    ),
    key=lambda n: n.id,
    detail=_detail,
    fetch=_networks,
    drill=lambda n: Drill("fixed", {"network": n.id}, n.cidr),
    empty="No networks yet: press n to create one (or run `netcon demo` for a demo cloud)",
    host=lambda n: n.host,
    subjects=lambda n: (n.bridge, n.cidr, n.gateway),
    owns=_owns,
    copy=lambda n: n.cidr,
    actions=(
        ViewAction("network.create", "n", "New network", footer=1, form=_create_form,
                   call=_create),
        RowAction(
            "network.delete", "D", "Delete network", footer=2, refuse=_refuse_delete,
            confirm=lambda n, v: Confirm(
                f"Delete network {n.label} (VLAN {n.vlan or '-'}, project {n.project or '-'})?",
                n.cidr,
                "Delete",
            ),
            call=_delete,
        ),
    ),
)
