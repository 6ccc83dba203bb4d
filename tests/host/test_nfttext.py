"""netcon's batches written in nft's syntax load exactly what their JSON would: every
table netcon makes, and elements of every kind of set and map it fills."""

from __future__ import annotations

import json
import subprocess
from typing import Any

import pytest

from core import secrules
from core.linux import closedports, nft, nfttext, spoof6
from core.linux.secgroups import operations as secgroups
from core.linux.secgroups import render
from core.linux.secgroups import tables as sg
from tests.host.conftest import Lab, in_ns

GROUP = 7


def _plain(op: secgroups.FilterOperation) -> list[dict[str, Any]]:
    return [c for _, c in op.commands() if isinstance(c, dict)]


def _tables() -> list[dict[str, Any]]:
    ops: list[secgroups.FilterOperation] = [
        secgroups.CreateGroupFilter(GROUP, "p/web"),
        secgroups.CreateCombination("in-7", (GROUP,), ("p/web",)),
        secgroups.CreateMemberSet(GROUP, "p/web"),
        secgroups.CreateMemberSet(GROUP, "p/web", secrules.IPV6),
        secgroups.AddGroupRule(GROUP, "p/web", "rule 3", "@m7", "tcp", 22, 22, "tcp 22"),
        secgroups.AddGroupRule(GROUP, "p/web", "rule 4", "10.9.0.0/16", "icmp", 8, -1, "icmp"),
        secgroups.AddGroupRule(
            GROUP, "p/web", "rule 5", "@m7-6", "tcp", 22, 22, "tcp 22", secrules.IPV6
        ),
        secgroups.AddGroupRule(
            GROUP, "p/web", "rule 6", "2001:db8::/32", "icmp", 128, -1, "icmpv6", secrules.IPV6
        ),
    ]
    return [
        *nft.table_commands(False),
        *sg.create_table(sg.BRIDGE, False),
        *sg.create_table(sg.GROUPS, False),
        *(command for op in ops for command in _plain(op)),
    ]


# (set, element texts as netcon keeps them): through secgroups' writing of elements.
ELEMENTS: list[tuple[sg.Table, str, list[str]]] = [
    (sg.BRIDGE, "ports", ["tapfa163e000001", "tapfa163e000002"]),
    (sg.BRIDGE, "port_mac", ["tapfa163e000001 . fa:16:3e:00:00:01"]),
    (sg.BRIDGE, "port_ip", ["tapfa163e000001 . 10.9.0.5"]),
    (sg.BRIDGE, spoof6.SET, ["tapfa163e000001 . fe80::f816:3eff:fe00:1"]),
    (sg.BRIDGE, "dhcp_servers", ["10.9.0.1"]),
    (sg.BRIDGE, "hairpin_uplinks", ["vx100 . vx100"]),
    (sg.GROUPS, "dhcp_servers", ["10.9.0.1"]),
    (sg.GROUPS, sg.INSTANCE_MAP, ["10.9.0.5 : in-7", "10.9.0.6 : in-7"]),
    (sg.GROUPS, "g7-ports", ["10.0.0.0/8 . 6 . 22-22", "1.2.3.4/32 . 17 . 1000-2000"]),
    (sg.GROUPS, "g7-icmp", ["0.0.0.0/0 . 8-8 . 0-255"]),
    (sg.GROUPS, "g7-any", ["192.0.2.0/24"]),
    (sg.GROUPS, "m7", ["10.9.0.5", "10.9.0.6"]),
    (sg.GROUPS, sg.INSTANCE_MAP6, ["2001:db8::5 : in-7", "fe80::f816:3eff:fe00:1 : in-7"]),
    (sg.GROUPS, "g7-ports6", ["2001:db8::/32 . 6 . 22-22"]),
    (sg.GROUPS, "g7-icmp6", ["::/0 . 128-128 . 0-255"]),
    (sg.GROUPS, "g7-any6", ["2001:db8:1::/48"]),
    (sg.GROUPS, "m7-6", ["2001:db8::5"]),
]


def _as_json(table: sg.Table, name: str, texts: list[str]) -> list[Any]:
    if name in sg.INSTANCE_MAPS:
        pairs = [text.partition(" : ") for text in texts]
        return [[key, {"goto": {"target": chain}}] for key, _, chain in pairs]
    return [sg.element_json(text, sg.spec_of(table, name)) for text in texts]


def _nat_elements() -> list[dict[str, Any]]:
    return [
        nft.element_command("add", nft.NET_SET, [nft.net_element("10.9.0.0/24")]),
        nft.element_command("add", "isolated", ["br100", "br101"]),
        nft.element_command("add", nft.PAIR_SET, [{"concat": ["br100", "br100"]}]),
        nft.element_command("add", "public_ifs", ["pub0"]),
        nft.element_command("add", nft.DNAT_MAP, [["203.0.113.5", "10.9.0.5"]]),
        nft.element_command("add", nft.SNAT_MAP, [["10.9.0.5", "203.0.113.5"]]),
        *closedports.renewal(("tapvpn100",), 300),
    ]


def _listed(ns: str) -> list[dict[str, Any]]:
    out = in_ns(ns, "nft", "-j", "list", "ruleset").stdout
    found = []
    for obj in json.loads(out)["nftables"]:
        if "metainfo" in obj:
            continue
        for body in obj.values():
            body.pop("handle", None)
            # A timed element's expiry counts down between the two listings.
            for elem in body.get("elem", []):
                if isinstance(elem, dict) and "elem" in elem:
                    elem["elem"].pop("expires", None)
        found.append(obj)
    return found


@pytest.mark.parametrize("with_elements", [False, True])
def test_text_batches_load_what_their_json_loads(lab: Lab, with_elements: bool) -> None:
    as_text, as_json = lab.netns("text"), lab.netns("json")
    tables = _tables()
    text_batch = list(tables)
    json_batch = list(tables)
    if with_elements:
        for table, name, texts in ELEMENTS:
            text_batch.append(
                sg.elements("add", table, name, render._elements_json("add", table, name, texts))
            )
            json_batch.append(sg.elements("add", table, name, _as_json(table, name, texts)))
        text_batch += _nat_elements()
        json_batch += _nat_elements()
    nft.Nft("nft", as_text).run(text_batch)
    loaded = subprocess.run(
        ["ip", "netns", "exec", as_json, "nft", "-j", "-f", "-"],
        input=json.dumps({"nftables": json_batch}),
        capture_output=True,
        text=True,
        check=False,
    )
    assert loaded.returncode == 0, loaded.stderr
    assert _listed(as_text) == _listed(as_json)
    if with_elements:
        # And taken away again by the same texts.
        removal = [
            sg.elements("delete", table, name, render._elements_json("delete", table, name, t))
            for table, name, t in ELEMENTS
            if name != "hairpin_uplinks"
        ]
        nft.Nft("nft", as_text).run(removal)
        left = {
            body["name"]: body.get("elem")
            for obj in _listed(as_text)
            for kind, body in obj.items()
            if kind in ("set", "map") and body["family"] in ("bridge", "inet")
        }
        assert left["g7-ports"] is None and left["ports"] is None
        assert left[sg.INSTANCE_MAP] is None and left["m7"] is None
        assert left[sg.INSTANCE_MAP6] is None and left["m7-6"] is None
        assert left["g7-ports6"] is None and left["g7-icmp6"] is None


def test_a_shape_it_does_not_know_is_said_not_guessed() -> None:
    with pytest.raises(nfttext.UnknownShape, match="statement 'quota'"):
        nfttext.batch([sg.add_rule(sg.GROUPS, "admit", "x", [{"quota": {"val": 1}}])])
