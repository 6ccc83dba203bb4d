"""The commands that run often and must start at once: `netcon dhcp-event`, which
dnsmasq runs on every lease event, `netcon complete`, which the shell runs on Tab, and
`netcon host list`, which an admin of a thousand hosts runs to see them.

None builds the parser nor imports SQLAlchemy; each does a few statements on a bare
driver connection. `host list` hands over to the ordinary command line whenever it
cannot read the database as it is (missing, of another schema revision, busy), so that
what is refused is refused in the ordinary words.
"""

from __future__ import annotations

import getpass
import os
import sys
import time
from pathlib import Path

from core import validate
from core.cli.spec import Command, arg
from core.errors import InvalidInput, NetconError
from core.paths import database_url
from core.store.leases import record_lease
from core.store.raw import RawDatabase, utcnow

DHCP_ACTIONS = ("add", "old", "del")

# What `netcon complete KIND PREFIX` offers: names from the database (one query each).
NAMES = {
    "project": "SELECT name FROM projects WHERE substr(name, 1, ?) = ? ORDER BY name",
    "instance": "SELECT name FROM instances WHERE substr(name, 1, ?) = ? ORDER BY name",
    "network": "SELECT cidr FROM networks WHERE substr(cidr, 1, ?) = ? ORDER BY first_int",
    "pool": "SELECT DISTINCT pool FROM floating_ips WHERE substr(pool, 1, ?) = ? ORDER BY pool",
    "floating": "SELECT address FROM floating_ips WHERE substr(address, 1, ?) = ? "
    "ORDER BY address_int",
    "secgroup": "SELECT DISTINCT name FROM security_groups WHERE substr(name, 1, ?) = ? "
    "ORDER BY name",
    "key": "SELECT DISTINCT name FROM keys WHERE substr(name, 1, ?) = ? ORDER BY name",
    "host": "SELECT name FROM hosts WHERE substr(name, 1, ?) = ? "
    "UNION SELECT DISTINCT host FROM networks WHERE host IS NOT NULL AND substr(host, 1, ?) = ? "
    "UNION SELECT DISTINCT host FROM floating_ips WHERE substr(host, 1, ?) = ? ORDER BY 1",
}
KINDS = (*NAMES, "netns")
# A Tab on an empty prefix in a /16 pool must not print 65,534 lines.
MAX_NAMES = 500


def _options(words: list[str]) -> tuple[str | None, bool, list[str]]:
    db: str | None = None
    as_json = False
    rest: list[str] = []
    index = 0
    while index < len(words):
        word = words[index]
        if word == "--db" and index + 1 < len(words):
            db = words[index + 1]
            index += 2
            continue
        if word.startswith("--db="):
            db = word.removeprefix("--db=")
        elif word == "--json":
            as_json = True
        else:
            rest.append(word)
        index += 1
    return db, as_json, rest


def run(words: list[str]) -> int:
    command = words[0]
    db, as_json, rest = _options(words[1:])
    try:
        if command == "complete":
            return complete(db, rest)
        return dhcp_event(db, rest)
    except NetconError as exc:
        from core.cli.outcome import report

        return report(exc, as_json)


def complete(db: str | None, words: list[str]) -> int:
    if not words or words[0] not in KINDS or len(words) > 2:
        raise InvalidInput("complete", f"usage: netcon complete {{{','.join(KINDS)}}} [PREFIX]")
    kind = words[0]
    prefix = words[1] if len(words) > 1 else ""
    if kind == "netns":
        names = sorted(p.name for p in Path("/run/netns").glob(f"{prefix}*"))
    else:
        try:
            database = RawDatabase(database_url(db), read_only=True)
        except NetconError:
            return 0  # no database yet: nothing to offer, and nothing to say during a Tab
        try:
            sql = NAMES[kind] + f" LIMIT {MAX_NAMES}"
            params = (len(prefix), prefix) * sql.count("substr(")
            names = [str(row[0]) for row in database.query(sql, params)]
        except Exception:  # noqa: BLE001 - a Tab never prints a traceback
            return 0
        finally:
            database.close()
    sys.stdout.write("".join(f"{name}\n" for name in names))
    return 0


def dhcp_event(db: str | None, words: list[str]) -> int:
    """``add|old|del MAC IP [HOSTNAME]``: mark the address leased or free it.

    ``init``: dnsmasq (which keeps no lease file) asks at start for the leases it should
    know; they are printed from the database for the network in NETWORK_ID.
    """
    if not words:
        raise InvalidInput("action", "missing; dnsmasq passes add, old, del or init")
    action = words[0]
    if action == "init":
        return dhcp_init(db, os.environ)
    if action not in DHCP_ACTIONS:
        raise InvalidInput("action", f"{action[:80]!r} must be one of add, old, del, init")
    if len(words) < 3:
        raise InvalidInput("dhcp-event", f"{action} needs MAC and IP")
    mac = validate.mac("mac", words[1])
    address = str(validate.ipv4_address("address", words[2]))
    database = RawDatabase(database_url(db))
    try:
        record_lease(database, action, mac, address, _actor(), utcnow())
    finally:
        database.close()
    return 0


# Leased addresses of one network that are still given to a MAC, with their instance.
LEASES = (
    "SELECT f.mac, f.address, i.name FROM fixed_ips f "
    "LEFT JOIN instances i ON i.id = f.instance_id "
    "WHERE f.network_id = ? AND f.leased AND f.mac IS NOT NULL ORDER BY f.address_int"
)
DEFAULT_LEASE_TIME = 120


def dhcp_init(db: str | None, env: os._Environ[str] | dict[str, str]) -> int:
    """Print the network's leases in dnsmasq's lease-file format, one a line:
    ``EXPIRY MAC IP HOSTNAME CLIENT-ID`` (``*`` for none).

    The database knows that an address is leased, not since when: each lease is given a
    whole lease time from now, so a guest keeps its address until it renews (and is
    ACKed) or, gone, its lease runs out and dnsmasq reports it deleted. Whatever goes
    wrong, init exits 0 having said why on stderr: dnsmasq does not start at all when
    it fails.
    """
    network = env.get("NETWORK_ID", "")
    if not network.isdigit():
        # A dnsmasq started by hand with netcon's command line: it serves without them.
        sys.stderr.write(
            "netcon dhcp-event init: no leases read (NETWORK_ID does not name the network)\n"
        )
        return 0
    lease_time = env.get("DHCP_LEASE_TIME", "")
    seconds = int(lease_time) if lease_time.isdigit() and int(lease_time) else DEFAULT_LEASE_TIME
    try:
        database = RawDatabase(database_url(db), read_only=True)
        try:
            rows = database.query(LEASES, (int(network),))
        finally:
            database.close()
    except Exception as exc:  # noqa: BLE001 - dnsmasq must start even so
        # A failed init keeps dnsmasq from starting at all; without the leases it still
        # serves (and, authoritative, ACKs every guest renewing the address it was given).
        reason = " ".join(str(exc).split())[:300]
        sys.stderr.write(f"netcon dhcp-event init: no leases read ({reason})\n")
        return 0
    expiry = int(time.time()) + seconds
    sys.stdout.write(
        "".join(f"{expiry} {mac} {address} {name or '*'} *\n" for mac, address, name in rows)
    )
    sys.stdout.flush()
    return 0


def host_list(words: list[str]) -> int | None:
    """`netcon host list [--db URL] [--json]`, read on a bare driver connection; None
    when the ordinary command line must do it (other options, or a database that cannot
    be read as it is)."""
    db, as_json, rest = _options(words)
    if rest:
        return None
    from core.config import load_settings
    from core.store.hostlist import read_hosts
    from core.store.rules import HEAD_REVISION

    try:
        url = database_url(db)
        down_time = load_settings().host_down_time
        database = RawDatabase(url, read_only=True)
    except Exception:  # noqa: BLE001 - the ordinary path says what is wrong
        return None
    try:
        database.execute("BEGIN")  # one picture of the hosts, for every statement
        stored = database.query("SELECT version_num FROM alembic_version")
        if stored != [(HEAD_REVISION,)]:
            return None
        hosts = read_hosts(database.query, utcnow(), down_time)
        database.execute("COMMIT")
    except Exception:  # noqa: BLE001 - the ordinary path says what is wrong
        return None
    finally:
        database.close()
    from core.cli.host import COLUMNS
    from core.cli.output import Output

    Output(sys.stdout, as_json=as_json).rows(hosts, COLUMNS)
    return 0


def _actor() -> str:
    try:
        return getpass.getuser()
    except (KeyError, OSError):
        return os.environ.get("USER", "unknown")


# Declared for the parser's help and the completion scripts; `main` runs them without it.
complete_command = Command(
    "complete",
    "print the names a shell completes (projects, instances, ...) that start with PREFIX",
    (arg("kind", choices=KINDS), arg("prefix", nargs="?", default="")),
    lambda ctx: complete(ctx.args.db, [ctx.args.kind, ctx.args.prefix]),
)
dhcp_event_command = Command(
    "dhcp-event",
    "a DHCP lease event (dnsmasq's --dhcp-script)",
    (
        arg("event", metavar="ACTION", help="add, old, del or init"),
        arg("mac", metavar="MAC", nargs="?"),
        arg("address", metavar="IP", nargs="?"),
        arg("hostname", metavar="HOSTNAME", nargs="?"),
    ),
    lambda ctx: dhcp_event(
        ctx.args.db,
        [w for w in (ctx.args.event, ctx.args.mac, ctx.args.address, ctx.args.hostname) if w],
    ),
)
