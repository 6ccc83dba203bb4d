"""A group's rules as the filter holds them: CIDR rules as elements of the group's interval
sets, and as chain rules those the sets cannot hold (a source group's, or one that overlaps
another element of its set, which the kernel refuses)."""

from __future__ import annotations

import functools
import ipaddress

from core import secrules
from core.linux.secgroups import tables as sg
from core.linux.secgroups.operations import AddGroupRule
from core.linux.secgroups.spec import FilteredGroup

HEAD = sg.HEAD_KINDS


def rule_elements(
    group: FilteredGroup, labels: dict[int, str]
) -> tuple[dict[str, dict[str, str]], dict[str, AddGroupRule]]:
    """(kind -> element -> words, comment -> chain rule) for one group's rules."""
    elements: dict[str, dict[str, str]] = {kind: {} for kind in HEAD}
    # What each set holds so far: (protocol, cidr, ranges) of its elements.
    spans: dict[str, list[Span]] = {kind: [] for kind in HEAD}
    lines: dict[str, AddGroupRule] = {}
    for rule in group.rules:
        family = rule.ethertype
        if rule.source is not None:
            source_label = str(labels.get(rule.source, rule.source))
            words = secrules.rule_words(
                rule.protocol, rule.from_port, rule.to_port, None, source_label, family
            )
            what = secrules.what(rule.protocol, rule.from_port, rule.to_port, family)
            comment = f"rule {rule.id}: {what} from group {rule.source}"
            source = "@" + sg.member_set(rule.source, family)
        else:
            assert rule.cidr is not None
            covered = secrules.ranges(rule.protocol, rule.from_port, rule.to_port)
            kind, element = _element(rule.protocol, covered, rule.cidr)
            words = secrules.rule_words(
                rule.protocol, rule.from_port, rule.to_port, rule.cidr, None, family
            )
            mine = (rule.protocol, _bounds(rule.cidr), covered)
            held = spans[kind]
            if not any(_clash(mine, other) for other in held):
                held.append(mine)
                elements[kind][element] = words
                continue
            what = secrules.what(rule.protocol, rule.from_port, rule.to_port, family)
            comment = f"rule {rule.id}: {what} from {rule.cidr}"
            source = rule.cidr
        lines[comment] = AddGroupRule(
            group.id,
            group.label,
            comment,
            source,
            rule.protocol,
            rule.from_port,
            rule.to_port,
            words,
            family,
        )
    return elements, lines


def _element(protocol: str, covered: secrules.Ranges, cidr: str) -> tuple[str, str]:
    """(kind of set, element) of a CIDR rule covering ``covered``; the kinds of IPv6 end
    in 6."""
    suffix = "6" if secrules.family_of(cidr) == secrules.IPV6 else ""
    if protocol in ("tcp", "udp"):
        low, high = covered.first
        return "ports" + suffix, f"{cidr} . {secrules.NUMBERS[protocol]} . {low}-{high}"
    if protocol == "icmp":
        (tl, th), (cl, ch) = covered
        return "icmp" + suffix, f"{cidr} . {tl}-{th} . {cl}-{ch}"
    return "any" + suffix, cidr


# (protocol, first and last address of the CIDR, ranges) of one element of a set.
Span = tuple[str, tuple[int, int], secrules.Ranges]


@functools.lru_cache(maxsize=4096)
def _bounds(cidr: str) -> tuple[int, int]:
    network = ipaddress.ip_network(cidr)
    return int(network.network_address), int(network.broadcast_address)


def _clash(mine: Span, other: Span) -> bool:
    """Whether two elements of one interval set would overlap (the kernel refuses that)."""
    if mine[0] != other[0]:
        return False
    (low, high), ((first, last), (code, top)) = mine[1], mine[2]
    (low2, high2), ((first2, last2), (code2, top2)) = other[1], other[2]
    return (
        low <= high2
        and low2 <= high
        and first <= last2
        and first2 <= last
        and code <= top2
        and code2 <= top
    )
