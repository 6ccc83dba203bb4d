"""Parsing and checking of everything an admin types.

Every function raises :class:`InvalidInput` naming the field and the rule, so the CLI,
the console's dialogs and scripts all report bad input the same way. Nothing here
touches the database.
"""

from __future__ import annotations

import ipaddress
import re
from dataclasses import dataclass

from core.errors import InvalidInput

# A project, label or security-group name ends up in dnsmasq files, nft comments, file
# names and shell command lines: keep to characters none of them treat specially.
_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,62}\Z")
# Instance names are DHCP host names: one RFC 1123 label.
_HOSTNAME = re.compile(r"[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?\Z")
# Linux interface names: at most 15 bytes (IFNAMSIZ - 1), no '/', no whitespace.
_IFNAME = re.compile(r"[A-Za-z0-9_.-]{1,15}\Z")
_MAC = re.compile(r"[0-9a-f]{2}(?::[0-9a-f]{2}){5}\Z")

MAX_RANGE_ADDRESSES = 65_536
MAX_NETWORK_SIZE = 65_536


def _text(field: str, value: object) -> str:
    if not isinstance(value, str):
        raise InvalidInput(field, f"must be text, got {type(value).__name__}")
    if value != value.strip() or not value:
        raise InvalidInput(field, "must not be empty or padded with spaces")
    return value


def name(field: str, value: object) -> str:
    text = _text(field, value)
    if not _NAME.match(text):
        raise InvalidInput(
            field,
            f"{text!r} must be 1-63 letters, digits, '.', '_' or '-', starting with a "
            "letter or digit",
        )
    return text


def hostname(field: str, value: object) -> str:
    text = _text(field, value)
    if not _HOSTNAME.match(text):
        raise InvalidInput(
            field,
            f"{text!r} must be a host name: 1-63 letters, digits or '-', not starting or "
            "ending with '-'",
        )
    return text


def ifname(field: str, value: object) -> str:
    text = _text(field, value)
    if not _IFNAME.match(text) or text in {".", ".."}:
        raise InvalidInput(
            field, f"{text!r} must be an interface name: 1-15 letters, digits, '.', '_' or '-'"
        )
    return text


def mac(field: str, value: object) -> str:
    text = _text(field, value).lower()
    if not _MAC.match(text):
        raise InvalidInput(field, f"{text!r} must be a MAC address like fa:16:3e:00:00:01")
    return text


def integer(field: str, value: object, low: int, high: int) -> int:
    if isinstance(value, bool):
        raise InvalidInput(field, "must be a whole number")
    if isinstance(value, str):
        if not re.fullmatch(r"[0-9]{1,10}", value.strip() or "x"):
            raise InvalidInput(field, f"{value!r} must be a whole number from {low} to {high}")
        value = int(value)
    if not isinstance(value, int):
        raise InvalidInput(field, "must be a whole number")
    if not low <= value <= high:
        raise InvalidInput(field, f"{value} is outside {low}-{high}")
    return value


def port(field: str, value: object) -> int:
    return integer(field, value, 1, 65535)


def vlan_id(field: str, value: object) -> int:
    return integer(field, value, 1, 4094)


def ipv4_address(field: str, value: object) -> ipaddress.IPv4Address:
    text = _text(field, value)
    try:
        address = ipaddress.ip_address(text)
    except ValueError:
        raise InvalidInput(field, f"{text!r} is not an IPv4 address") from None
    if not isinstance(address, ipaddress.IPv4Address):
        raise InvalidInput(field, f"{text} is IPv6; only IPv4 is managed")
    return address


def ipv4_network(field: str, value: object) -> ipaddress.IPv4Network:
    text = _text(field, value)
    if "/" not in text:
        raise InvalidInput(field, f"{text!r} must be a CIDR like 10.0.0.0/16")
    try:
        network = ipaddress.ip_network(text, strict=False)
    except ValueError:
        raise InvalidInput(field, f"{text!r} is not a valid CIDR") from None
    if not isinstance(network, ipaddress.IPv4Network):
        raise InvalidInput(field, f"{text} is IPv6; only IPv4 is managed")
    if str(network) != text:
        raise InvalidInput(field, f"{text} has host bits set; did you mean {network}?")
    return network


@dataclass(frozen=True)
class AddressRange:
    """An inclusive range of IPv4 addresses, kept as integers for range queries."""

    first: int
    last: int

    def __len__(self) -> int:
        return self.last - self.first + 1

    def __str__(self) -> str:
        low, high = ipaddress.IPv4Address(self.first), ipaddress.IPv4Address(self.last)
        return str(low) if self.first == self.last else f"{low}-{high}"

    def addresses(self) -> range:
        return range(self.first, self.last + 1)


def ip_range(field: str, value: object) -> AddressRange:
    """A CIDR (its usable hosts), ``A-B`` (inclusive) or a single address."""
    text = _text(field, value)
    if "-" in text:
        low_text, _, high_text = text.partition("-")
        low = ipv4_address(field, low_text.strip())
        high = ipv4_address(field, high_text.strip())
        if int(high) < int(low):
            raise InvalidInput(field, f"{text}: the range ends before it starts")
        result = AddressRange(int(low), int(high))
    elif "/" in text:
        network = ipv4_network(field, text)
        if network.prefixlen >= 31:
            result = AddressRange(int(network.network_address), int(network.broadcast_address))
        else:
            result = AddressRange(
                int(network.network_address) + 1, int(network.broadcast_address) - 1
            )
    else:
        address = ipv4_address(field, text)
        result = AddressRange(int(address), int(address))
    if len(result) > MAX_RANGE_ADDRESSES:
        raise InvalidInput(
            field, f"{text} holds {len(result)} addresses; at most {MAX_RANGE_ADDRESSES} at once"
        )
    return result


def network_size(field: str, value: object, minimum: int) -> int:
    size = integer(field, value, 1, 1 << 32)
    if size & (size - 1):
        raise InvalidInput(field, f"{size} is not a power of two")
    if not minimum <= size <= MAX_NETWORK_SIZE:
        raise InvalidInput(field, f"{size} is outside {minimum}-{MAX_NETWORK_SIZE} addresses")
    return size


def host_name(field: str, value: object) -> str:
    """A host's name: dot-separated host-name labels, as ``socket.gethostname()`` gives."""
    text = _text(field, value)
    if len(text) > 253 or not all(_HOSTNAME.match(label) for label in text.split(".")):
        raise InvalidInput(
            field, f"{text!r} must be a host name: labels of letters, digits or '-', joined by '.'"
        )
    return text


# Row ids are INTEGER in both databases; PostgreSQL's is 32 bits.
MAX_ROW_ID = 2**31 - 1


def row_id(field: str, value: object) -> int:
    """An id as the database stores it; a number beyond that range is bad input."""
    if isinstance(value, str) and value.strip().isdigit() and len(value.strip()) > 10:
        raise InvalidInput(field, f"{value.strip()[:20]}... is not an id (at most {MAX_ROW_ID})")
    return integer(field, value, 1, MAX_ROW_ID)
