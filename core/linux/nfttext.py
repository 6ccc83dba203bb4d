"""netcon's nft batches written in nft's own syntax, the form `nft -f` reads.

netcon builds its commands as nftables' JSON objects (easy to build, compare and test),
but nft reads that JSON several times slower than its own syntax: for a filter of
thousands of elements the parse costs more than the kernel's commit. So a batch is
written out as text and loaded as such. Only the shapes netcon builds are known here;
anything else is a programming error, said as one.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import Any

# A value that is an address, a prefix, a MAC, a number or a range of them: written
# bare. Any other string in an element or compared with an interface name is a name
# (an interface's), quoted so that no name is read as a keyword.
_BARE = re.compile(r"[0-9A-Fa-f:.]+(/\d+)?(-[0-9A-Fa-f:.]+)?\Z")
_NAME_KEYS = frozenset({"iifname", "oifname", "ibrname", "obrname"})


class Syntax(str):
    """An element already written in nft's syntax (``"tap1" . 10.0.0.5``), as is."""


class UnknownShape(ValueError):
    """A command or expression this module cannot write."""


def batch(commands: Iterable[dict[str, Any]]) -> str:
    """The commands as one text for one atomic `nft -f`."""
    return "".join(command(c) + "\n" for c in commands)


def verbatim(text: str) -> dict[str, Any]:
    """Commands already written in nft's syntax, one a line, carried in a batch as they are
    (a whole filter written in one pass, where building JSON first would cost more)."""
    return {VERBATIM: text}


VERBATIM = "text"


def command(cmd: dict[str, Any]) -> str:
    if len(cmd) != 1:
        raise UnknownShape(f"one verb per command: {sorted(cmd)}")
    ((verb, body),) = cmd.items()
    if verb == VERBATIM:
        return str(body).rstrip("\n")
    if verb not in ("add", "delete", "flush", "create"):
        raise UnknownShape(f"verb {verb!r}")
    if len(body) != 1:
        raise UnknownShape(f"one object per command: {sorted(body)}")
    ((kind, obj),) = body.items()
    if kind == "table":
        return f"{verb} table {obj['family']} {obj['name']}"
    where = f"{obj['family']} {obj['table']}"
    if kind == "chain":
        head = f"{verb} chain {where} {obj['name']}"
        if verb == "add" and "hook" in obj:
            policy = obj.get("policy", "accept")
            return (
                f"{head} {{ type {obj['type']} hook {obj['hook']} priority {obj['prio']}; "
                f"policy {policy}; }}"
            )
        return head
    if kind in ("set", "map"):
        head = f"{verb} {kind} {where} {obj['name']}"
        if verb not in ("add", "create"):
            return head
        return f"{head} {{ {_set_body(kind, obj)}}}"
    if kind == "rule":
        head = f"{verb} rule {where} {obj['chain']}"
        if verb == "delete":
            return f"{head} handle {int(obj['handle'])}"
        text = " ".join(statement(s) for s in obj["expr"])
        comment = obj.get("comment")
        if comment:
            if '"' in comment:
                raise UnknownShape(f"a comment with a quote: {comment!r}")
            text += f' comment "{comment}"'
        return f"{head} {text}"
    if kind == "element":
        return f"{verb} element {where} {obj['name']} {{ {elements(obj['elem'])} }}"
    raise UnknownShape(f"object {kind!r}")


def _set_body(kind: str, obj: dict[str, Any]) -> str:
    key = obj["type"]
    key_text = " . ".join(key) if isinstance(key, list) else str(key)
    if kind == "map":
        value = obj["map"]
        key_text += " : " + (" . ".join(value) if isinstance(value, list) else str(value))
    text = f"type {key_text}; "
    if obj.get("flags"):
        text += f"flags {','.join(obj['flags'])}; "
    if obj.get("timeout"):
        text += f"timeout {int(obj['timeout'])}s; "
    if obj.get("elem"):
        text += f"elements = {{ {elements(obj['elem'])} }}; "
    return text


def elements(elems: Iterable[Any]) -> str:
    return ", ".join(map(_element, elems))


def _element(elem: Any) -> str:
    if isinstance(elem, Syntax):
        return elem
    if isinstance(elem, list):
        key, value = elem
        return f"{_element(key)} : {_element(value)}"
    if isinstance(elem, dict) and "elem" in elem:
        inner = elem["elem"]
        text = _element(inner["val"])
        if "timeout" in inner:
            text += f" timeout {int(inner['timeout'])}s"
        return text
    if isinstance(elem, dict) and ("goto" in elem or "jump" in elem):
        return statement(elem)
    if isinstance(elem, dict) and "concat" in elem:
        return " . ".join(_element(part) for part in elem["concat"])
    if isinstance(elem, str):
        return _quoted(elem)
    return expression(elem)


def _quoted(text: str) -> str:
    if _BARE.match(text):
        return text
    if '"' in text:
        raise UnknownShape(f"a name with a quote: {text!r}")
    return f'"{text}"'


def statement(stmt: dict[str, Any]) -> str:
    if len(stmt) != 1:
        raise UnknownShape(f"statement {sorted(stmt)}")
    ((kind, body),) = stmt.items()
    if kind in ("accept", "drop", "continue", "return", "masquerade", "counter") and not body:
        return kind
    if kind in ("jump", "goto"):
        return f"{kind} {body['target']}"
    if kind == "match":
        return _match(body)
    if kind == "vmap":
        return f"{expression(body['key'])} vmap {expression(body['data'])}"
    if kind == "mangle":
        return f"{expression(body['key'])} set {expression(body['value'])}"
    if kind in ("snat", "dnat") and set(body) == {"addr"}:
        return f"{kind} to {expression(body['addr'])}"
    raise UnknownShape(f"statement {kind!r}")


def _match(body: dict[str, Any]) -> str:
    op, left, right = body["op"], body["left"], body["right"]
    left_text = expression(left)
    names = _name_positions(left)
    if isinstance(right, list):
        # A list of flags (ct state established,related), or of values to match any of.
        if op == "in":
            right_text = ",".join(_right(r, names) for r in right)
        else:
            right_text = "{ " + ", ".join(_right(r, names) for r in right) + " }"
    else:
        right_text = _right(right, names)
    if op in ("==", "in"):
        # A bitwise left side needs the operator said (meta mark & 0x10 == 0x10).
        explicit = isinstance(left, dict) and ("&" in left or "|" in left)
        return f"{left_text} {'== ' if explicit else ''}{right_text}"
    if op in ("!=", "<", ">", "<=", ">="):
        return f"{left_text} {op} {right_text}"
    raise UnknownShape(f"operator {op!r}")


def _name_positions(left: Any) -> tuple[bool, ...]:
    """Which parts of a (concatenated) left side are interface names."""
    parts = left["concat"] if isinstance(left, dict) and "concat" in left else [left]
    return tuple(
        isinstance(p, dict) and "meta" in p and p["meta"].get("key") in _NAME_KEYS for p in parts
    )


def _right(value: Any, names: tuple[bool, ...]) -> str:
    if isinstance(value, str):
        if value.startswith("@"):
            return value
        if names == (True,):
            return _quoted(value)
        return value
    if isinstance(value, dict) and "concat" in value:
        return " . ".join(_right(v, (n,)) for v, n in zip(value["concat"], names, strict=False))
    if isinstance(value, dict) and "set" in value:
        return "{ " + ", ".join(_right(v, names) for v in value["set"]) + " }"
    return expression(value)


def expression(expr: Any) -> str:
    if isinstance(expr, bool):
        return "exists" if expr else "missing"
    if isinstance(expr, int):
        return str(expr)
    if isinstance(expr, str):
        return expr
    if not isinstance(expr, dict) or len(expr) != 1:
        raise UnknownShape(f"expression {expr!r}")
    ((kind, body),) = expr.items()
    if kind == "payload":
        return f"{body['protocol']} {body['field']}"
    if kind == "meta":
        return f"meta {body['key']}"
    if kind == "ct" and set(body) == {"key"}:
        return f"ct {body['key']}"
    if kind == "concat":
        return " . ".join(expression(part) for part in body)
    if kind == "prefix":
        return f"{body['addr']}/{int(body['len'])}"
    if kind == "range":
        low, high = body
        return f"{expression(low)}-{expression(high)}"
    if kind == "set":
        if isinstance(body, str):
            return body
        return "{ " + ", ".join(expression(v) for v in body) + " }"
    if kind in ("&", "|", "^"):
        left, right = body
        return f"{expression(left)} {kind} {expression(right)}"
    if kind == "fib":
        flags = " . ".join(body["flags"])
        return f"fib {flags} {body['result']}"
    if kind == "map":
        return f"{expression(body['key'])} map {expression(body['data'])}"
    if kind == "addr":
        return expression(body)
    raise UnknownShape(f"expression {kind!r}")
