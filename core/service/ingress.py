"""What may reach an instance, answered from the database: its effective ingress rules
and `explain` for one first packet. The host's filter is built from the same rows and
the same rule semantics (core/secrules.py), so the answer is what the kernel does once
the host has applied the change."""

from __future__ import annotations

import ipaddress
from typing import Any

from sqlalchemy import Connection, select

from core import secrules, validate
from core.errors import InvalidInput
from core.linux.ports import port_name
from core.service.part import Part
from core.store.schema import (
    fixed_ips,
    instance_security_groups,
    networks,
    projects,
    security_group_rules,
    security_groups,
)
from core.views import (
    IngressRuleView,
    IngressVerdictView,
    InstanceIngressView,
    InstancePortView,
    RuleView,
)

ALWAYS = (
    "replies to connections the instance opened (conntrack established, related)",
    "DHCP answers from its network's dnsmasq (udp 67 to 68)",
    "ARP",
    "IPv6 neighbour discovery (icmpv6 types 133-136, hop limit 255) and multicast "
    "listener messages (130-132, 143, from link-local addresses)",
    "DHCPv6 answers (udp 547 to 546 from a link-local address)",
)
# ICMPv6 types that pass whatever the rules (neighbour discovery, multicast listeners).
ALWAYS_ICMPV6 = {130, 131, 132, 133, 134, 135, 136, 143}
EXPLAIN_PROTOCOLS = ("tcp", "udp", "icmp", "icmpv6")


class IngressPart(Part):
    def instance_ingress(self, instance: str) -> InstanceIngressView:
        """The rules that let traffic into ``instance``, from all of its groups."""
        with self.db.read() as connection:
            return _ingress(connection, self._instance(connection, instance))

    def explain_ingress(
        self,
        instance: str,
        source: str,
        protocol: str,
        port: int | str | None = None,
        icmp_type: int | str | None = None,
        icmp_code: int | str | None = None,
    ) -> IngressVerdictView:
        """Whether a new connection from ``source`` reaches ``instance``, and which rule
        (or the default deny) decides it."""
        packet = _packet(source, protocol, port, icmp_type, icmp_code)
        with self.db.read() as connection:
            row = self._instance(connection, instance)
            view = _ingress(connection, row)
            address = _address_for(connection, row.id, packet) if view.ports else "-"
            if packet.protocol == "udp" and packet.port == 68:
                for p in view.ports:
                    if p.dhcp_server == packet.source:
                        return IngressVerdictView(
                            view.instance,
                            p.address,
                            packet.text(),
                            True,
                            f"DHCP from the dnsmasq of {p.network} ({p.dhcp_server}, "
                            "source port 67)",
                            None,
                        )
            if (
                packet.ethertype == secrules.IPV6
                and packet.protocol == "icmp"
                and packet.port in ALWAYS_ICMPV6
            ):
                return IngressVerdictView(
                    view.instance,
                    address,
                    packet.text(),
                    True,
                    "neighbour discovery and multicast listener messages always pass",
                    None,
                )
            members = _member_groups(connection, row.project_id, packet.source)
            for rule in view.rules:
                if not secrules.admits(
                    rule.protocol, rule.from_port, rule.to_port, packet, rule.ethertype
                ):
                    continue
                if rule.cidr is not None:
                    if not _within(packet.source, rule.cidr):
                        continue
                elif rule.source_group not in members:
                    continue
                return IngressVerdictView(
                    view.instance,
                    address,
                    packet.text(),
                    True,
                    f"rule #{rule.id} of group {rule.group}: {rule.text}",
                    rule,
                )
            groups = ", ".join(view.groups) or "(none)"
            return IngressVerdictView(
                view.instance,
                address,
                packet.text(),
                False,
                f"default deny: no rule of groups {groups} lets in {packet.text()}",
                None,
            )


def _packet(
    source: str,
    protocol: str,
    port: int | str | None,
    icmp_type: int | str | None,
    icmp_code: int | str | None,
) -> secrules.Packet:
    address = _source_address(source)
    if protocol not in EXPLAIN_PROTOCOLS:
        raise InvalidInput("proto", f"{protocol!r} must be one of {', '.join(EXPLAIN_PROTOCOLS)}")
    if protocol == "icmpv6":
        if ":" not in address:
            raise InvalidInput("proto", f"icmpv6 is IPv6's ICMP; {address} is an IPv4 address")
        protocol = "icmp"
    if protocol == "icmp":
        if port is not None:
            raise InvalidInput("port", "icmp has no ports; give --icmp-type (and --icmp-code)")
        echo = 128 if ":" in address else 8
        kind = echo if icmp_type is None else validate.integer("icmp_type", icmp_type, 0, 255)
        code = 0 if icmp_code is None else validate.integer("icmp_code", icmp_code, 0, 255)
        return secrules.Packet(address, "icmp", kind, code)
    if icmp_type is not None or icmp_code is not None:
        raise InvalidInput("icmp_type", f"{protocol} has ports, not ICMP types; give --port")
    if port is None:
        raise InvalidInput("port", f"{protocol} needs a destination port (1-65535)")
    return secrules.Packet(address, protocol, validate.port("port", port))


def _source_address(source: str) -> str:
    """The source a packet is asked about: an IPv4 or an IPv6 address."""
    try:
        return str(ipaddress.ip_address(source.strip()))
    except ValueError:
        raise InvalidInput(
            "from", f"{source!r} is not an IPv4 or IPv6 address (e.g. 203.0.113.7, 2001:db8::7)"
        ) from None


def _address_for(connection: Connection, instance_id: int, packet: secrules.Packet) -> str:
    """The instance's address of the packet's family ("-" when it has none: then no
    rule is asked, and the default deny decides)."""
    column = fixed_ips.c.address_v6 if packet.ethertype == secrules.IPV6 else fixed_ips.c.address
    found = connection.execute(
        select(column)
        .where(fixed_ips.c.instance_id == instance_id, fixed_ips.c.mac.is_not(None))
        .order_by(fixed_ips.c.address_int)
    ).scalars()
    return next((a for a in found if a is not None), "-")


def _within(address: str, cidr: str) -> bool:
    return ipaddress.ip_address(address) in ipaddress.ip_network(cidr)


def _member_groups(connection: Connection, project_id: int, address: str) -> set[str]:
    """The project's groups whose members hold ``address`` as a fixed IP (IPv4 or IPv6)."""
    column = fixed_ips.c.address_v6 if ":" in address else fixed_ips.c.address
    return set(
        connection.execute(
            select(security_groups.c.name)
            .join(
                instance_security_groups,
                instance_security_groups.c.security_group_id == security_groups.c.id,
            )
            .join(fixed_ips, fixed_ips.c.instance_id == instance_security_groups.c.instance_id)
            .where(security_groups.c.project_id == project_id, column == address)
        ).scalars()
    )


def _ingress(connection: Connection, row: Any) -> InstanceIngressView:
    project = connection.execute(
        select(projects.c.name).where(projects.c.id == row.project_id)
    ).scalar_one()
    groups = connection.execute(
        select(security_groups.c.id, security_groups.c.name)
        .join(
            instance_security_groups,
            instance_security_groups.c.security_group_id == security_groups.c.id,
        )
        .where(instance_security_groups.c.instance_id == row.id)
        .order_by(security_groups.c.name)
    ).all()
    names = {group_id: name for group_id, name in groups}
    rules = rule_views(connection, security_group_rules.c.group_id.in_(list(names)))
    effective = sorted(
        (
            IngressRuleView(
                names[group_id],
                rule.id,
                rule.protocol,
                rule.from_port,
                rule.to_port,
                rule.cidr,
                rule.source_group,
                secrules.rule_words(
                    rule.protocol,
                    rule.from_port,
                    rule.to_port,
                    rule.cidr,
                    rule.source_group,
                    rule.ethertype,
                ),
                rule.ethertype,
            )
            for group_id, rule in rules
        ),
        key=lambda r: (r.group, r.id),
    )
    ports = tuple(
        InstancePortView(cidr, address, mac, port_name(mac), gateway)
        for cidr, address, mac, gateway in connection.execute(
            select(networks.c.cidr, fixed_ips.c.address, fixed_ips.c.mac, networks.c.gateway)
            .join(networks, fixed_ips.c.network_id == networks.c.id)
            .where(fixed_ips.c.instance_id == row.id, fixed_ips.c.mac.is_not(None))
            .order_by(fixed_ips.c.address_int)
        )
    )
    return InstanceIngressView(
        instance=row.name,
        project=project,
        groups=tuple(name for _, name in groups),
        ports=ports,
        rules=tuple(effective),
        always=ALWAYS,
        otherwise="deny",
    )


def rule_views(connection: Connection, *where: Any) -> list[tuple[int, RuleView]]:
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
            security_group_rules.c.ethertype,
        )
        .outerjoin(source, security_group_rules.c.source_group_id == source.c.id)
        .where(*where)
        .order_by(security_group_rules.c.id)
    )
    return [(row[0], RuleView(*row[1:])) for row in rows]
