"""The two nftables tables that enforce security groups, and how netcon reads them back.

``table bridge netcon`` sees every frame an instance port sends or receives, without
conntrack (the bridge family has none here): it drops what a port sends from another
MAC or IP (or ARP for another address), and lets out to a port only ARP, packets for
the port's own fixed IP and DHCP answers. It also fails closed: a bridge port that is
no instance's port here, not netcon's own (a segment link, a bridge_interface, a VPN
tap), not trusted and not a port of a bridge netcon does not own passes no frame either
way. This kernel has no bridge meta expressions (``meta ibrname``), so a rule cannot ask
which bridge a port is on: the ports of other bridges are let through by name, as the
last full apply found them (see closedports.py).

``table inet netcon_groups`` judges, with conntrack, the IPv4 and IPv6 packets for those
ports at the postrouting hook (bridged ones reach the ip and ip6 hooks through
br_netfilter; routed ones and the host's own pass it too): replies and ICMP errors about
allowed connections pass, then a verdict map from the destination (the
fixed IPv4 address; the link-local and global IPv6 ones) jumps to the chain of the
port's combination of groups, which jumps to each group's chain and drops what none
accepted. Neighbour discovery, multicast listener messages and DHCPv6 answers pass
whatever the rules (see ``admit``). A group's chain matches its CIDR rules with three
interval sets per family (tcp/udp ports, ICMP types, any protocol) and has one rule per
source-group rule, matching a set of that group's members' addresses of the rule's
family. What is per family has its own set, keyed by the family's addresses, so a
change is still element operations found by key.

Everything that changes with instances and rules is a set or map element, a group's
chain, or a combination's chain, so no change rewrites a table. Rules carry comments;
netcon recognises its own rules by them.

This module is the layout (names, fixed sets and chains, rule expressions), the text and
JSON of elements, and the nft commands that build it; state.py reads the tables back.
"""

from __future__ import annotations

import functools
import hashlib
import re
from typing import Any

from core import secrules
from core.linux import nft, spoof6

BRIDGE = ("bridge", "netcon")
GROUPS = ("inet", "netcon_groups")
# The IPv4-only groups table of earlier netcon: replaced by the inet one.
OLD_GROUPS = ("ip", "netcon_groups")
TABLES = (BRIDGE, GROUPS)
Table = tuple[str, str]
Expr = list[dict[str, Any]]

# Set name -> (component types, interval flag).
SetSpec = tuple[tuple[str, ...], bool]
FIXED_SETS: dict[Table, dict[str, SetSpec]] = {
    BRIDGE: {
        "ports": (("ifname",), False),
        # The ports that pass besides instance ports (closedports.py).
        "own_ports": (("ifname",), False),
        "trusted_ports": (("ifname",), False),
        "foreign_ports": (("ifname",), False),
        "port_mac": (("ifname", "ether_addr"), False),
        "port_ip": (("ifname", "ipv4_addr"), False),
        spoof6.SET: spoof6.SET_SPEC,
        "dhcp_servers": (("ipv4_addr",), False),
        # "vx100 . vx100": the uplinks in hairpin mode (see nft.py, "hairpin").
        "hairpin_uplinks": (("ifname", "ifname"), False),
    },
    GROUPS: {"dhcp_servers": (("ipv4_addr",), False)},
}
# Sets whose elements may carry a timeout: a VPN tap passes only as long as the host's
# heartbeat lease (see closedports.py), so a dead agent's VPN server reaches nothing.
TIMED_SETS: dict[Table, frozenset[str]] = {BRIDGE: frozenset({"own_ports"})}
INSTANCE_MAP = "instance_in"
INSTANCE_MAP6 = "instance_in6"
INSTANCE_MAPS = {INSTANCE_MAP: "ipv4_addr", INSTANCE_MAP6: "ipv6_addr"}
GROUP_SETS: dict[str, SetSpec] = {
    "ports": (("ipv4_addr", "inet_proto", "inet_service"), True),
    "icmp": (("ipv4_addr", "icmp_type", "icmp_code"), True),
    "any": (("ipv4_addr",), True),
    "ports6": (("ipv6_addr", "inet_proto", "inet_service"), True),
    "icmp6": (("ipv6_addr", "icmpv6_type", "icmpv6_code"), True),
    "any6": (("ipv6_addr",), True),
}
MEMBER_SET: SetSpec = (("ipv4_addr",), False)
MEMBER_SET6: SetSpec = (("ipv6_addr",), False)
# The names of what netcon adds per group: its chain, its rule sets, its members' sets.
GROUP_CHAIN = re.compile(r"g(\d+)\Z")
GROUP_SET = re.compile(r"g(\d+)-((?:ports|icmp|any)6?)\Z")
MEMBER_SET_NAME = re.compile(r"m(\d+)(-6)?\Z")


def instance_map(address: str) -> str:
    """The verdict map that holds ``address``: one per family."""
    return INSTANCE_MAP6 if ":" in address else INSTANCE_MAP


def _match(left: Any, right: Any, op: str = "==") -> dict[str, Any]:
    return {"match": {"op": op, "left": left, "right": right}}


def _meta(key: str) -> dict[str, Any]:
    return {"meta": {"key": key}}


def _field(protocol: str, name: str) -> dict[str, Any]:
    return {"payload": {"protocol": protocol, "field": name}}


def _concat(*parts: Any) -> dict[str, Any]:
    return {"concat": list(parts)}


DROP: dict[str, Any] = {"drop": None}
ACCEPT: dict[str, Any] = {"accept": None}
_DHCP_ANSWER = [
    _match(_field("udp", "sport"), 67),
    _match(_field("udp", "dport"), 68),
    _match(_field("ip", "saddr"), "@dhcp_servers"),
    ACCEPT,
]
_REPLIES = [_match({"ct": {"key": "state"}}, ["established", "related"], "in"), ACCEPT]
_TO_INSTANCES = [{"vmap": {"key": _field("ip", "daddr"), "data": f"@{INSTANCE_MAP}"}}]
_TO_INSTANCES6 = [{"vmap": {"key": _field("ip6", "daddr"), "data": f"@{INSTANCE_MAP6}"}}]
_LINK_LOCAL = {"prefix": {"addr": "fe80::", "len": 10}}
_ICMPV6 = _match(_meta("l4proto"), "ipv6-icmp")
# IPv6 that passes whatever the rules, as ARP and DHCP do for IPv4: neighbour discovery
# only from the link (hop limit 255, which no router forwards), multicast listener
# messages from link-local sources, and DHCPv6 answers (the bridge table already drops
# them when an instance port sends them).
_ADMIT6: tuple[tuple[str, Expr], ...] = (
    (
        "neighbour discovery",
        [
            _ICMPV6,
            _match(
                _field("icmpv6", "type"),
                {
                    "set": [
                        "nd-router-solicit",
                        "nd-router-advert",
                        "nd-neighbor-solicit",
                        "nd-neighbor-advert",
                    ]
                },
            ),
            _match(_field("ip6", "hoplimit"), 255),
            ACCEPT,
        ],
    ),
    (
        "multicast listeners",
        [
            _ICMPV6,
            _match(_field("ip6", "saddr"), _LINK_LOCAL),
            _match(
                _field("icmpv6", "type"),
                {
                    "set": [
                        "mld-listener-query",
                        "mld-listener-report",
                        "mld-listener-done",
                        "mld2-listener-report",
                    ]
                },
            ),
            ACCEPT,
        ],
    ),
    (
        "DHCPv6 answers",
        [
            _match(_field("ip6", "saddr"), _LINK_LOCAL),
            _match(_meta("l4proto"), "udp"),
            _match(_field("udp", "sport"), 547),
            _match(_field("udp", "dport"), 546),
            ACCEPT,
        ],
    ),
)
OPEN_SETS = ("ports", "own_ports", "trusted_ports", "foreign_ports")


# The source MAC of a frame this host NATed and sends back out the uplink it came in on:
# br_netfilter leaves it the client's, and the hosts behind the link would then learn the
# client's MAC there. Locally administered, netcon's own: nothing else sends from it.
HAIRPIN_SOURCE_MAC = "02:00:4e:43:00:01"
_UPLINK_PAIR = _match(_concat(_meta("iifname"), _meta("oifname")), "@hairpin_uplinks")
_NATED_HERE = _match({"&": [_meta("mark"), nft.HAIRPIN_MARK]}, nft.HAIRPIN_MARK)


def _closed(direction: str) -> tuple[str, Expr]:
    """The first rule of a base chain: a port in none of the open sets passes nothing."""
    port = _meta(direction)
    return ("closed ports", [*(_match(port, f"@{name}", "!=") for name in OPEN_SETS), DROP])


# Base chains: (type, hook, priority) or None for a regular chain; then (comment, expr).
ChainSpec = tuple[tuple[str, str, int] | None, tuple[tuple[str, Expr], ...]]
FIXED_CHAINS: dict[Table, dict[str, ChainSpec]] = {
    BRIDGE: {
        # Before br_netfilter (priority 0) hands the frame to conntrack and the ip hooks.
        "prerouting": (
            ("filter", "prerouting", -200),
            (
                _closed("iifname"),
                (
                    "instance ports",
                    [_match(_meta("iifname"), "@ports"), {"jump": {"target": "spoof"}}],
                ),
            ),
        ),
        "spoof": (
            None,
            (
                (
                    "own MAC",
                    [
                        _match(
                            _concat(_meta("iifname"), _field("ether", "saddr")), "@port_mac", "!="
                        ),
                        DROP,
                    ],
                ),
                (
                    "DHCP discovery",
                    [
                        _match(_field("udp", "sport"), 68),
                        _match(_field("udp", "dport"), 67),
                        _match(_field("ip", "saddr"), "0.0.0.0"),
                        _match(_field("ip", "daddr"), "255.255.255.255"),
                        ACCEPT,
                    ],
                ),
                (
                    "own IP",
                    [
                        _match(_concat(_meta("iifname"), _field("ip", "saddr")), "@port_ip", "!="),
                        DROP,
                    ],
                ),
                ("IPv4", [_match(_field("ether", "type"), "ip"), ACCEPT]),
                ("ARP of Ethernet", [_match(_field("arp", "hlen"), 6, "!="), DROP]),
                ("ARP of IPv4", [_match(_field("arp", "plen"), 4, "!="), DROP]),
                (
                    "ARP from own MAC",
                    [
                        _match(
                            _concat(_meta("iifname"), _field("arp", "saddr ether")),
                            "@port_mac",
                            "!=",
                        ),
                        DROP,
                    ],
                ),
                (
                    "ARP probe",
                    [
                        _match(_field("arp", "operation"), "request"),
                        _match(_field("arp", "saddr ip"), "0.0.0.0"),
                        ACCEPT,
                    ],
                ),
                (
                    "ARP for own IP",
                    [
                        _match(
                            _concat(_meta("iifname"), _field("arp", "saddr ip")), "@port_ip", "!="
                        ),
                        DROP,
                    ],
                ),
                ("ARP", [_match(_field("ether", "type"), "arp"), ACCEPT]),
                *spoof6.SPOOF_RULES,
                ("nothing else", [DROP]),
            ),
        ),
        "forward": (
            ("filter", "forward", 0),
            (
                _closed("oifname"),
                (
                    "NATed back out its uplink",
                    [
                        _UPLINK_PAIR,
                        _NATED_HERE,
                        {
                            "mangle": {
                                "key": _field("ether", "saddr"),
                                "value": HAIRPIN_SOURCE_MAC,
                            }
                        },
                        ACCEPT,
                    ],
                ),
                ("reflected by an uplink", [_UPLINK_PAIR, DROP]),
                (
                    "instance ports",
                    [_match(_meta("oifname"), "@ports"), {"jump": {"target": "guard"}}],
                ),
            ),
        ),
        "output": (
            ("filter", "output", 0),
            (
                _closed("oifname"),
                (
                    "instance ports",
                    [_match(_meta("oifname"), "@ports"), {"jump": {"target": "guard"}}],
                ),
            ),
        ),
        "guard": (
            None,
            (
                ("ARP", [_match(_field("ether", "type"), "arp"), ACCEPT]),
                (
                    "to its own IP",
                    [_match(_concat(_meta("oifname"), _field("ip", "daddr")), "@port_ip"), ACCEPT],
                ),
                ("DHCP answers", _DHCP_ANSWER),
                *spoof6.GUARD_RULES,
                ("nothing else", [DROP]),
            ),
        ),
    },
    GROUPS: {
        # One hook that every packet to an instance passes, forwarded (routed or, through
        # br_netfilter, bridged) or sent by the host: the kernel checks every verdict of
        # the instance maps once per hook that reaches them whenever a change adds a jump,
        # so one hook halves what a join costs the kernel on a host of many ports.
        "postrouting": (
            ("filter", "postrouting", 0),
            (
                ("replies", _REPLIES),
                ("instances", _TO_INSTANCES),
                ("instances over IPv6", _TO_INSTANCES6),
            ),
        ),
        "admit": (
            None,
            (
                ("invalid", [_match({"ct": {"key": "state"}}, "invalid", "in"), DROP]),
                ("DHCP answers", _DHCP_ANSWER),
                *_ADMIT6,
            ),
        ),
    },
}


def group_chain(group_id: int) -> str:
    return f"g{group_id}"


def group_set(group_id: int, kind: str) -> str:
    return f"g{group_id}-{kind}"


def member_set(group_id: int, family: str = secrules.IPV4) -> str:
    """The set of a group's members' addresses of one family."""
    return f"m{group_id}-6" if family == secrules.IPV6 else f"m{group_id}"


# Asked once per port or group on a full plan, with few distinct answers.
@functools.lru_cache(maxsize=4096)
def combination_chain(groups: tuple[int, ...]) -> str:
    """The chain for ports in exactly these groups (ids ascending); ``in-none`` for none."""
    name = "in-" + ("-".join(str(g) for g in groups) or "none")
    if len(name) <= 64:
        return name
    return "in-" + hashlib.sha1(name.encode()).hexdigest()[:16]


# Asked once per port or group on a full plan, with few distinct answers.
@functools.lru_cache(maxsize=4096)
def combination_rules(groups: tuple[int, ...]) -> tuple[tuple[str, Expr], ...]:
    rules: list[tuple[str, Expr]] = [("admit", [{"jump": {"target": "admit"}}])]
    rules += [(group_chain(g), [{"jump": {"target": group_chain(g)}}]) for g in groups]
    rules.append(("deny", [DROP]))
    return tuple(rules)


# Per family: the address header, the ICMP header, its protocol number, the set suffix.
_FAMILY = {secrules.IPV4: ("ip", "icmp", 1, ""), secrules.IPV6: ("ip6", "icmpv6", 58, "6")}
HEAD_KINDS = tuple(GROUP_SETS)


def _head(group_id: int, family: str) -> tuple[tuple[str, Expr], ...]:
    """The three set lookups of one family at the top of a group's chain."""
    header, icmp, number, suffix = _FAMILY[family]
    saddr = _field(header, "saddr")
    return (
        (
            f"ports{suffix}",
            [
                _match(
                    _concat(saddr, _meta("l4proto"), _field("th", "dport")),
                    f"@{group_set(group_id, 'ports' + suffix)}",
                ),
                ACCEPT,
            ],
        ),
        (
            f"icmp{suffix}",
            [
                _match(_meta("l4proto"), number),
                _match(
                    _concat(saddr, _field(icmp, "type"), _field(icmp, "code")),
                    f"@{group_set(group_id, 'icmp' + suffix)}",
                ),
                ACCEPT,
            ],
        ),
        (f"any{suffix}", [_match(saddr, f"@{group_set(group_id, 'any' + suffix)}"), ACCEPT]),
    )


# Asked once per group on a full plan.
@functools.lru_cache(maxsize=4096)
def group_head(group_id: int) -> tuple[tuple[str, Expr], ...]:
    return _head(group_id, secrules.IPV4) + _head(group_id, secrules.IPV6)


def line_expr(
    source: str, protocol: str, from_port: int, to_port: int, family: str = secrules.IPV4
) -> Expr:
    """One rule as a chain rule: from ``source`` (a CIDR or ``@set``), for its traffic."""
    header, icmp, number, _ = _FAMILY[family]
    if source.startswith("@"):
        right: Any = source
    else:
        right = prefix(source)
    expr: Expr = [_match(_field(header, "saddr"), right)]
    if protocol == "icmp":
        expr.append(_match(_meta("l4proto"), number))
    elif protocol != "any":
        expr.append(_match(_meta("l4proto"), secrules.NUMBERS[protocol]))
    covered = secrules.ranges(protocol, from_port, to_port)
    if protocol in ("tcp", "udp"):
        expr.append(_match(_field("th", "dport"), _range(covered.first)))
    elif protocol == "icmp":
        if from_port != secrules.ANY:
            expr.append(_match(_field(icmp, "type"), from_port))
        if to_port != secrules.ANY:
            expr.append(_match(_field(icmp, "code"), to_port))
    expr.append(ACCEPT)
    return expr


def prefix(cidr: str) -> dict[str, Any]:
    addr, _, length = cidr.partition("/")
    return {"prefix": {"addr": addr, "len": int(length or (128 if ":" in addr else 32))}}


def _range(pair: tuple[int, int]) -> Any:
    return pair[0] if pair[0] == pair[1] else {"range": list(pair)}


# -- elements: netcon keeps them as text ("10.0.0.0/8 . 6 . 22-22") -----------------------


def element_json(text: str, spec: SetSpec) -> Any:
    types, interval = spec
    if len(types) == 1:
        return _value_json(text, types[0], interval)
    parts = text.split(" . ")
    return {"concat": [_value_json(p, t, interval) for p, t in zip(parts, types, strict=True)]}


def _value_json(text: str, kind: str, interval: bool) -> Any:
    if kind in ("ifname", "ether_addr"):
        return text
    if kind in ("ipv4_addr", "ipv6_addr"):
        return prefix(text) if interval else text
    if kind == "inet_proto":
        return int(text)
    low, _, high = text.partition("-")
    return _range((int(low), int(high or low))) if interval else int(low)


def _value_text(value: Any, kind: str, interval: bool) -> str:
    if isinstance(value, dict) and "prefix" in value:
        return f"{value['prefix']['addr']}/{value['prefix']['len']}"
    if isinstance(value, dict) and "range" in value:
        low, high = value["range"]
        return f"{low}-{high}"
    if kind == "ipv4_addr":
        return f"{value}/32" if interval else str(value)
    if kind == "ipv6_addr":
        return f"{value}/128" if interval else str(value)
    if kind == "inet_proto" and isinstance(value, str):
        return str(secrules.NUMBERS.get(value, value))
    if kind in ("inet_service", "icmp_type", "icmp_code", "icmpv6_type", "icmpv6_code") and (
        interval
    ):
        return f"{value}-{value}"
    return str(value)


def element_text(elem: Any, spec: SetSpec) -> str:
    types, interval = spec
    if isinstance(elem, dict) and "elem" in elem:
        elem = elem["elem"]["val"]
    parts = elem["concat"] if isinstance(elem, dict) and "concat" in elem else [elem]
    return " . ".join(_value_text(v, t, interval) for v, t in zip(parts, types, strict=False))


def spec_of(table: Table, name: str) -> SetSpec:
    """The type netcon gives the set ``name`` of ``table``."""
    fixed = FIXED_SETS[table].get(name)
    if fixed is not None:
        return fixed
    match = GROUP_SET.match(name)
    if match is not None:
        return GROUP_SETS[match.group(2)]
    return MEMBER_SET6 if name.endswith("-6") else MEMBER_SET


# -- commands --------------------------------------------------------------------------------


def _base(table: Table) -> dict[str, str]:
    return {"family": table[0], "table": table[1]}


def add_set(
    table: Table, name: str, spec: SetSpec, elems: list[str] | None = None
) -> dict[str, Any]:
    types, interval = spec
    kind: Any = list(types) if len(types) > 1 else types[0]
    body: dict[str, Any] = {**_base(table), "name": name, "type": kind}
    flags = ["interval"] if interval else []
    if name in TIMED_SETS.get(table, frozenset()):
        flags.append("timeout")
    if flags:
        body["flags"] = flags
    if elems:
        body["elem"] = [element_json(e, spec) for e in elems]
    return {"add": {"set": body}}


def delete_set(table: Table, name: str) -> dict[str, Any]:
    return {"delete": {"set": {**_base(table), "name": name}}}


def add_chain(table: Table, name: str, hook: tuple[str, str, int] | None = None) -> dict[str, Any]:
    body: dict[str, Any] = {**_base(table), "name": name}
    if hook is not None:
        body.update(type=hook[0], hook=hook[1], prio=hook[2], policy="accept")
    return {"add": {"chain": body}}


def flush_chain(table: Table, name: str) -> dict[str, Any]:
    return {"flush": {"chain": {**_base(table), "name": name}}}


def delete_chain(table: Table, name: str) -> dict[str, Any]:
    return {"delete": {"chain": {**_base(table), "name": name}}}


def add_rule(table: Table, chain: str, comment: str, expr: Expr) -> dict[str, Any]:
    return {"add": {"rule": {**_base(table), "chain": chain, "expr": expr, "comment": comment}}}


def delete_rule(table: Table, chain: str, handle: int) -> dict[str, Any]:
    return {"delete": {"rule": {**_base(table), "chain": chain, "handle": handle}}}


def elements(verb: str, table: Table, name: str, elems: list[Any]) -> dict[str, Any]:
    return {verb: {"element": {**_base(table), "name": name, "elem": elems}}}


def create_table(table: Table, replace: bool) -> list[dict[str, Any]]:
    """The fixed part of ``table``: its own sets and chains, no elements."""
    family, name = table
    commands: list[dict[str, Any]] = []
    if replace:
        commands.append({"delete": {"table": {"family": family, "name": name}}})
    commands.append({"add": {"table": {"family": family, "name": name}}})
    for set_name, spec in FIXED_SETS[table].items():
        commands.append(add_set(table, set_name, spec))
    if table == GROUPS:
        for map_name, kind in INSTANCE_MAPS.items():
            body = {**_base(table), "name": map_name, "type": kind, "map": "verdict"}
            commands.append({"add": {"map": body}})
    # Regular chains first: base chains jump to them.
    specs = sorted(FIXED_CHAINS[table].items(), key=lambda item: item[1][0] is not None)
    for chain, (hook, _) in specs:
        commands.append(add_chain(table, chain, hook))
    for chain, (_, rules) in specs:
        commands += [add_rule(table, chain, comment, expr) for comment, expr in rules]
    return commands
