"""A namespace's nftables ruleset in a form two namespaces' can be compared in."""

from __future__ import annotations

import json
from typing import Any

from tests.host.conftest import in_ns


def comparable_ruleset(ns: str) -> list[Any]:
    """The ruleset as JSON, without handles, each set's elements in one order (a hash
    set lists them in the order of its hash, which is not the same twice)."""
    listing = json.loads(in_ns(ns, "nft", "-j", "list", "ruleset").stdout)["nftables"]
    found = []
    for item in listing:
        ((kind, body),) = item.items()
        if kind == "metainfo":
            continue
        body = {k: v for k, v in body.items() if k != "handle"}
        if "elem" in body:
            body["elem"] = sorted(body["elem"], key=json.dumps)
        found.append({kind: body})
    return found
