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
# A bad value is quoted in its error, but never more of it than this.
MAX_SHOWN = 80

# Blocks no network or floating range may use (RFC 6890's special-purpose registry).
SPECIAL_BLOCKS = tuple(
    (ipaddress.IPv4Network(block), what)
    for block, what in (
        ("0.0.0.0/8", "'this network'"),
        ("127.0.0.0/8", "loopback"),
        ("169.254.0.0/16", "link-local (the metadata address 169.254.169.254 lives there)"),
        ("224.0.0.0/4", "multicast"),
        ("240.0.0.0/4", "reserved for future use"),
        ("255.255.255.255/32", "the limited broadcast address"),
    )
)


def shown(value: object) -> str:
    """``value`` quoted for an error message, cut to MAX_SHOWN characters."""
    text = repr(value)
    return text if len(text) <= MAX_SHOWN else text[: MAX_SHOWN - 4] + "...'"


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
            f"{shown(text)} must be 1-63 letters, digits, '.', '_' or '-', starting with a "
            "letter or digit",
        )
    return text


def hostname(field: str, value: object) -> str:
    text = _text(field, value)
    if not _HOSTNAME.match(text):
        raise InvalidInput(
            field,
            f"{shown(text)} must be a host name: 1-63 letters, digits or '-', not starting or "
            "ending with '-'",
        )
    return text


def ifname(field: str, value: object) -> str:
    text = _text(field, value)
    if not _IFNAME.match(text) or text in {".", ".."}:
        raise InvalidInput(
            field,
            f"{shown(text)} must be an interface name: 1-15 letters, digits, '.', '_' or '-'",
        )
    return text


def mac(field: str, value: object) -> str:
    text = _text(field, value).lower()
    if not _MAC.match(text):
        raise InvalidInput(field, f"{shown(text)} must be a MAC address like fa:16:3e:00:00:01")
    return text


def integer(field: str, value: object, low: int, high: int) -> int:
    if isinstance(value, bool):
        raise InvalidInput(field, "must be a whole number")
    if isinstance(value, str):
        if not re.fullmatch(r"[0-9]{1,10}", value.strip() or "x"):
            raise InvalidInput(field, f"{shown(value)} must be a whole number from {low} to {high}")
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
        raise InvalidInput(field, f"{shown(text)} is not an IPv4 address") from None
    if not isinstance(address, ipaddress.IPv4Address):
        raise InvalidInput(field, f"{text} is IPv6; only IPv4 is managed")
    return address


def ipv4_network(field: str, value: object) -> ipaddress.IPv4Network:
    text = _text(field, value)
    if "/" not in text:
        raise InvalidInput(field, f"{shown(text)} must be a CIDR like 10.0.0.0/16")
    try:
        network = ipaddress.ip_network(text, strict=False)
    except ValueError:
        raise InvalidInput(field, f"{shown(text)} is not a valid CIDR") from None
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
            field,
            f"{shown(text)} must be a host name: labels of letters, digits or '-', joined by '.'",
        )
    return text


# Row ids are INTEGER in both databases; PostgreSQL's is 32 bits.
MAX_ROW_ID = 2**31 - 1


def row_id(field: str, value: object) -> int:
    """An id as the database stores it; a number beyond that range is bad input."""
    if isinstance(value, str) and value.strip().isdigit() and len(value.strip()) > 10:
        raise InvalidInput(field, f"{shown(value.strip())} is not an id (at most {MAX_ROW_ID})")
    return integer(field, value, 1, MAX_ROW_ID)


def usable(field: str, first: int, last: int, text: str) -> None:
    """Refuse addresses no network or floating range may use (RFC 6890)."""
    for block, what in SPECIAL_BLOCKS:
        if first <= int(block.broadcast_address) and last >= int(block.network_address):
            raise InvalidInput(field, f"{text} reaches into {block}, {what}; no network may use it")


def usable_network(field: str, value: object) -> ipaddress.IPv4Network:
    network = ipv4_network(field, value)
    usable(field, int(network.network_address), int(network.broadcast_address), str(network))
    return network


_LABEL = re.compile(r"[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?\Z")


def domain(field: str, value: object) -> str:
    """A DNS domain: dot-separated host-name labels, at most 253 characters."""
    text = _text(field, value)
    if len(text) > 253 or not all(_LABEL.match(label) for label in text.split(".")):
        raise InvalidInput(
            field,
            f"{shown(text)} must be a domain: labels of letters, digits or '-', joined by '.'",
        )
    return text


# Directories netcon must never take for its own state.
SYSTEM_DIRECTORIES = frozenset(
    [
        "/",
        "/bin",
        "/boot",
        "/dev",
        "/etc",
        "/home",
        "/lib",
        "/lib32",
        "/lib64",
        "/media",
        "/mnt",
        "/opt",
        "/proc",
        "/root",
        "/run",
        "/sbin",
        "/srv",
        "/sys",
        "/tmp",
        "/usr",
        "/usr/bin",
        "/usr/lib",
        "/usr/local",
        "/usr/sbin",
        "/usr/share",
        "/var",
        "/var/lib",
        "/var/log",
        "/var/run",
        "/var/tmp",
    ]
)


def state_directory(field: str, value: object) -> str:
    """An absolute directory netcon may own (it creates, fills and empties it)."""
    text = _text(field, value)
    path = text.rstrip("/") or "/"
    if not path.startswith("/") or "/../" in f"{path}/" or "/./" in f"{path}/":
        raise InvalidInput(field, f"{shown(text)} must be an absolute path without '.' or '..'")
    if path in SYSTEM_DIRECTORIES:
        raise InvalidInput(
            field, f"{path} is a system directory; give netcon one of its own, like /var/lib/netcon"
        )
    return path


def program(field: str, value: object) -> str:
    """A program to run: a name found on PATH, or an absolute path; nothing for a shell."""
    text = _text(field, value)
    if not re.fullmatch(r"/?[A-Za-z0-9_.+/-]{1,255}", text) or ".." in text.split("/"):
        raise InvalidInput(field, f"{shown(text)} must be a program name or an absolute path")
    return text


MIN_MTU = 576
MAX_USER_DATA = 64 * 1024
_GZIP = b"\x1f\x8b"


def mtu(field: str, value: object, maximum: int) -> int:
    """An MTU guests can use: at least IPv4's 576, at most what the link under it carries."""
    number = integer(field, value, 1, 65535)
    if number < MIN_MTU:
        raise InvalidInput(field, f"{number} is below {MIN_MTU}, the least IPv4 needs")
    if number > maximum:
        raise InvalidInput(field, f"{number} is above {maximum}, what the link under it carries")
    return number


def user_data(field: str, value: bytes) -> bytes:
    """cloud-init user data: UTF-8 text or gzip, at most 64 KiB."""
    if len(value) > MAX_USER_DATA:
        raise InvalidInput(field, f"is {len(value)} bytes; at most {MAX_USER_DATA} (64 KiB)")
    if not value.startswith(_GZIP):
        try:
            value.decode("utf-8")
        except UnicodeDecodeError:
            raise InvalidInput(field, "must be UTF-8 text or gzip") from None
    return value


def public_key(field: str, value: object) -> tuple[str, str]:
    """An OpenSSH public key line; returns it tidied and its SHA256 fingerprint."""
    import base64
    import hashlib

    text = _text(field, value.strip() if isinstance(value, str) else value)
    parts = text.split()
    if len(parts) < 2 or "\n" in text:
        raise InvalidInput(field, "must be one OpenSSH public key line, like 'ssh-ed25519 AAAA...'")
    from cryptography.exceptions import UnsupportedAlgorithm
    from cryptography.hazmat.primitives.serialization import load_ssh_public_key

    try:
        load_ssh_public_key(" ".join(parts[:2]).encode())
        blob = base64.b64decode(parts[1], validate=True)
    except (ValueError, TypeError, UnsupportedAlgorithm):
        raise InvalidInput(
            field, f"{shown(parts[0])} ... is not a public key OpenSSH reads"
        ) from None
    digest = base64.b64encode(hashlib.sha256(blob).digest()).decode().rstrip("=")
    return " ".join(parts), f"SHA256:{digest}"
