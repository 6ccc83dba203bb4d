"""Speed of the core's bulk and allocation paths, as ratios to a bare baseline.

    python bench/bench_core.py [--quick] [--pg URL] [--strict] [--profile]

Every figure is measured in this run, on this machine, on a fresh database file (or a
freshly emptied PostgreSQL database) whose schema was made by ``Database(url)``, so the
bare baseline writes into the very tables and indexes that netcon uses:

* ``floating create`` of a /16 (65,534 addresses) against a bare DBAPI ``executemany``
  INSERT of the same rows, and ``floating delete`` of it against a bare ``DELETE``;
* ``network create 10.0.0.0/8 256 256`` against a bare insert of its 256 network rows
  and 65,536 fixed-IP rows;
* launching an instance at a time into a /22 FlatDHCP network until it is full: the mean
  of the last 100 launches against the mean of the first 100 (allocation must not get
  slower as the pool fills);
* extra, beyond the issue: the mean of 100 launches into a /16 FlatDHCP network whose
  other addresses are all taken, against 100 launches into an empty one. At a /22 the
  fixed cost of a launch hides an allocation query that grows with use; at a /16 not.

The bare baselines get their rows ready-made before the clock starts; netcon's figures
include making them. Targets print PASS or FAIL; the exit status is 0 either way unless
``--strict``. ``--profile`` prints where the time of each failing operation goes.
"""

from __future__ import annotations

import argparse
import cProfile
import io
import ipaddress
import pstats
import re
import statistics
import sys
import tempfile
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from sqlalchemy import Engine, event  # noqa: E402

from core.config import Settings, load_settings  # noqa: E402
from core.errors import NoMoreFixedIps  # noqa: E402
from core.service import NetconService  # noqa: E402
from core.store.db import Database  # noqa: E402
from core.store.schema import metadata  # noqa: E402

FLOATING_RANGE = "172.16.0.0/16"
FLOATING_POOL = "bench"
NETWORK_RANGE = "10.0.0.0/8"
NETWORK_COUNT = 256
NETWORK_SIZE = 256
ALLOC_NETWORK = "10.200.0.0/22"
FULL_NETWORK = "10.128.0.0/16"
WINDOW = 100
BULK_TARGET = 5.0
ALLOC_TARGET = 1.5


def bench_settings() -> Settings:
    return load_settings(
        paths=[], quota_fixed_ips=-1, quota_floating_ips=-1, host="bench-host"
    )


# -- databases ------------------------------------------------------------------------


class Backend:
    """Hands out empty databases of one kind, each with netcon's schema."""

    name: str

    def fresh(self) -> str:
        raise NotImplementedError

    def close(self) -> None:
        pass


class SqliteBackend(Backend):
    name = "sqlite"

    def __init__(self) -> None:
        self._dir = tempfile.TemporaryDirectory(prefix="nc-bench-")
        self._count = 0

    def fresh(self) -> str:
        self._count += 1
        url = f"sqlite:///{Path(self._dir.name) / f'bench{self._count}.db'}"
        Database(url).dispose()
        return url

    def close(self) -> None:
        self._dir.cleanup()


class PostgresBackend(Backend):
    """One database given by the user, emptied before each measurement."""

    name = "postgresql"

    def __init__(self, url: str) -> None:
        self.url = url

    def fresh(self) -> str:
        db = Database(self.url)
        tables = ", ".join(table.name for table in metadata.sorted_tables)
        with db.engine.begin() as connection:
            connection.exec_driver_sql(f"TRUNCATE {tables} RESTART IDENTITY CASCADE")
        db.dispose()
        return self.url


@contextmanager
def raw_transaction(url: str) -> Iterator[Any]:
    """A DBAPI cursor inside one write transaction, committed on leaving."""
    db = Database(url)
    raw = db.engine.raw_connection()
    try:
        cursor = raw.cursor()
        if db.dialect == "sqlite":
            # The engine's connections are in autocommit mode; BEGIN is ours, as netcon's.
            cursor.execute("BEGIN IMMEDIATE")
            yield cursor
            cursor.execute("COMMIT")
        else:
            yield cursor
            raw.commit()
        cursor.close()
    finally:
        raw.close()
        db.dispose()


def marker(url: str) -> str:
    return "?" if url.startswith("sqlite") else "%s"


def placeholders(url: str, count: int) -> str:
    return ", ".join([marker(url)] * count)


# -- the measurements -----------------------------------------------------------------


def timed(action: Callable[[], object]) -> float:
    start = time.perf_counter()
    action()
    return time.perf_counter() - start


def floating_rows() -> list[tuple[object, ...]]:
    hosts = ipaddress.IPv4Network(FLOATING_RANGE).hosts()
    return [(str(a), int(a), FLOATING_POOL, "bench-host", "eth0", False) for a in hosts]


def bare_floating(url: str) -> tuple[float, float]:
    """Seconds for a bare INSERT of the /16's rows (and of their pool, which each row
    refers to), then for a bare DELETE of them (and of the pool)."""
    rows = floating_rows()
    m = marker(url)
    insert = (
        "INSERT INTO floating_ips (address, address_int, pool, host, interface, "
        f"auto_assigned) VALUES ({placeholders(url, 6)})"
    )
    with raw_transaction(url) as cursor:
        start = time.perf_counter()
        cursor.execute(f"INSERT INTO floating_pools (name) VALUES ({m})", (FLOATING_POOL,))
        cursor.executemany(insert, rows)
    inserted = time.perf_counter() - start
    span = ipaddress.IPv4Network(FLOATING_RANGE)
    delete = f"DELETE FROM floating_ips WHERE address_int BETWEEN {m} AND {m}"
    with raw_transaction(url) as cursor:
        start = time.perf_counter()
        cursor.execute(delete, (int(span.network_address), int(span.broadcast_address)))
        cursor.execute(f"DELETE FROM floating_pools WHERE name = {m}", (FLOATING_POOL,))
    deleted = time.perf_counter() - start
    return inserted, deleted


def netcon_floating(url: str) -> tuple[float, float]:
    service = NetconService(url, bench_settings(), actor="bench")
    created = timed(
        lambda: service.create_floating_range("bench-host", FLOATING_RANGE, pool=FLOATING_POOL)
    )
    deleted = timed(lambda: service.delete_floating_range(FLOATING_RANGE))
    service.db.dispose()
    return created, deleted


@dataclass(frozen=True)
class NetworkRows:
    networks: list[tuple[object, ...]]
    fixed: list[list[tuple[object, ...]]]  # per network, without its id


def network_rows() -> NetworkRows:
    """The rows `network create 10.0.0.0/8 256 256` writes, as the VLAN manager makes them."""
    now = datetime.now()
    subnets = list(ipaddress.IPv4Network(NETWORK_RANGE).subnets(new_prefix=24))[:NETWORK_COUNT]
    networks: list[tuple[object, ...]] = []
    fixed: list[list[tuple[object, ...]]] = []
    for index, subnet in enumerate(subnets):
        vlan = 100 + index
        base = subnet.network_address
        networks.append(
            (f"vlan{vlan}", "vlan", str(subnet), int(base), int(subnet.broadcast_address),
             str(subnet.netmask), str(base + 1), str(subnet.broadcast_address), str(base + 3),
             f"br{vlan}", "vlan", vlan, 1000 + index, str(base + 2), False, now)
        )
        count = subnet.num_addresses
        fixed.append(
            [
                (str(base + i), int(base) + i, i < 3 or i == count - 1, False, False)
                for i in range(count)
            ]
        )
    return NetworkRows(networks, fixed)


def bare_networks(url: str) -> float:
    rows = network_rows()
    insert_network = (
        "INSERT INTO networks (label, manager, cidr, first_int, last_int, netmask, gateway, "
        "broadcast, dhcp_start, bridge, segmentation, vlan, vpn_public_port, "
        f"vpn_private_address, vpn_enabled, created_at) VALUES ({placeholders(url, 16)})"
    )
    insert_fixed = (
        "INSERT INTO fixed_ips (network_id, address, address_int, reserved, allocated, leased) "
        f"VALUES ({placeholders(url, 6)})"
    )
    with raw_transaction(url) as cursor:
        start = time.perf_counter()
        cursor.executemany(insert_network, rows.networks)
        cursor.execute("SELECT id FROM networks ORDER BY first_int")
        ids = [row[0] for row in cursor.fetchall()]
        cursor.executemany(
            insert_fixed,
            [(nid, *row) for nid, block in zip(ids, rows.fixed, strict=True) for row in block],
        )
    return time.perf_counter() - start


def netcon_networks(url: str) -> float:
    service = NetconService(url, bench_settings(), actor="bench")
    seconds = timed(
        lambda: service.create_networks(NETWORK_RANGE, NETWORK_COUNT, NETWORK_SIZE, 100, 1000)
    )
    service.db.dispose()
    return seconds


def launch_service(url: str, cidr: str) -> NetconService:
    """A service with a FlatDHCP network of ``cidr`` and a project 'bench' that uses it."""
    service = NetconService(url, bench_settings(), actor="bench")
    # Warm the statement caches elsewhere first, so the first window is not flattered
    # by (or charged for) one-off start-up work.
    service.create_networks("10.201.0.0/24", 1, 256, 3000, 3000, manager="vlan")
    service.create_project("warmup", "vlan")
    for n in range(20):
        service.launch_instance("warmup", f"warm{n}")
    size = ipaddress.IPv4Network(cidr).num_addresses
    service.create_networks(cidr, 1, size, manager="flatdhcp")
    service.create_project("bench", "flatdhcp")
    return service


def launch_times(service: NetconService, count: int | None, prefix: str = "vm") -> list[float]:
    """Seconds of each launch into project 'bench', until ``count`` or the pool is full."""
    times: list[float] = []
    while count is None or len(times) < count:
        start = time.perf_counter()
        try:
            service.launch_instance("bench", f"{prefix}{len(times)}")
        except NoMoreFixedIps:
            break
        times.append(time.perf_counter() - start)
    return times


def allocation_times(url: str) -> list[float]:
    """Seconds of each launch into a /22 FlatDHCP network, in order, until it is full."""
    service = launch_service(url, ALLOC_NETWORK)
    times = launch_times(service, None)
    service.db.dispose()
    return times


def fill_all_but(url: str, cidr: str, left: int) -> None:
    """Give every free address of ``cidr`` but the top ``left`` to a made-up instance.

    Launching 65k instances one by one would take minutes; these rows are what they
    would leave behind, written in bulk.
    """
    network = ipaddress.IPv4Network(cidr)
    cut = int(network.broadcast_address) - left
    m = marker(url)
    with raw_transaction(url) as cursor:
        cursor.execute(f"SELECT id FROM projects WHERE name = {m}", ("bench",))
        (project_id,) = cursor.fetchone()
        free = f"instance_id IS NULL AND reserved = {m} AND address_int < {m}"
        cursor.execute(
            "INSERT INTO instances (name, project_id, created_at) "
            f"SELECT {m} || CAST(id AS VARCHAR(12)), {m}, {m} FROM fixed_ips WHERE {free}",
            ("fill", project_id, datetime.now(), False, cut),
        )
        cursor.execute(
            "UPDATE fixed_ips SET allocated = "
            f"{m}, instance_id = (SELECT i.id FROM instances i "
            f"WHERE i.name = {m} || CAST(fixed_ips.id AS VARCHAR(12))) WHERE {free}",
            (True, "fill", False, cut),
        )
    if not url.startswith("sqlite"):
        # One UPDATE of 65k rows leaves 65k dead entries in the free-address index that
        # the next scans would step over; the launches it stands for would have been
        # spread over time, with autovacuum between them.
        db = Database(url)
        with db.engine.connect().execution_options(isolation_level="AUTOCOMMIT") as connection:
            connection.exec_driver_sql("VACUUM (ANALYZE) fixed_ips")
            connection.exec_driver_sql("VACUUM (ANALYZE) instances")
        db.dispose()


def full_network_times(url: str) -> tuple[float, float]:
    """Mean launch seconds into an empty /16, and into the same /16 with 99.7% used."""
    service = launch_service(url, FULL_NETWORK)
    empty = statistics.fmean(launch_times(service, WINDOW, "empty"))
    fill_all_but(url, FULL_NETWORK, 2 * WINDOW)
    full = statistics.fmean(launch_times(service, WINDOW, "late"))
    service.db.dispose()
    return empty, full


# -- report ---------------------------------------------------------------------------


@dataclass(frozen=True)
class Result:
    backend: str
    what: str
    netcon: float
    baseline: float
    baseline_name: str
    target: float

    @property
    def ratio(self) -> float:
        return self.netcon / self.baseline

    @property
    def passed(self) -> bool:
        return self.ratio <= self.target


def repeat(runs: int, measure: Callable[[], Any]) -> list[Any]:
    return [measure() for _ in range(runs)]


def measure_backend(backend: Backend, runs: int) -> list[Result]:
    name = backend.name
    bare_fl = repeat(runs, lambda: bare_floating(backend.fresh()))
    ours_fl = repeat(runs, lambda: netcon_floating(backend.fresh()))
    bare_nw = repeat(runs, lambda: bare_networks(backend.fresh()))
    ours_nw = repeat(runs, lambda: netcon_networks(backend.fresh()))
    fills = repeat(runs, lambda: allocation_times(backend.fresh()))
    # Other processes on the machine add bursts of delay to single launches; of the
    # repeated fills, each window's quietest mean is its figure.
    first = min(statistics.fmean(times[:WINDOW]) for times in fills)
    last = min(statistics.fmean(times[-WINDOW:]) for times in fills)
    crowded = repeat(runs, lambda: full_network_times(backend.fresh()))
    for times in fills:
        print(
            f"  [{name}] {len(times)} launches into {ALLOC_NETWORK} in {sum(times):.1f} s; "
            f"median of first/last {WINDOW}: {statistics.median(times[:WINDOW]) * 1e3:.2f}"
            f"/{statistics.median(times[-WINDOW:]) * 1e3:.2f} ms",
            flush=True,
        )
    return [
        Result(name, "floating create /16", min(r[0] for r in ours_fl),
               min(r[0] for r in bare_fl), "bare executemany", BULK_TARGET),
        Result(name, "floating delete /16", min(r[1] for r in ours_fl),
               min(r[1] for r in bare_fl), "bare DELETE", BULK_TARGET),
        Result(name, f"network create {NETWORK_RANGE} {NETWORK_COUNT} {NETWORK_SIZE}",
               min(ours_nw), min(bare_nw), "bare executemany", BULK_TARGET),
        Result(name, f"launch mean, last {WINDOW} of /22", last, first, f"first {WINDOW}",
               ALLOC_TARGET),
        Result(name, "launch mean, /16 99.7% used (extra)", min(r[1] for r in crowded),
               min(r[0] for r in crowded), "empty /16", ALLOC_TARGET),
    ]


def print_table(results: Sequence[Result]) -> None:
    header = (
        f"{'db':<10} {'measurement':<36} {'netcon':>10} {'baseline':>10} "
        f"{'(baseline)':<17} {'ratio':>6} {'target':>7}  verdict"
    )
    print(header)
    print("-" * len(header))
    for r in results:
        unit, scale = ("ms", 1e3) if r.netcon < 0.1 else ("s", 1.0)
        print(
            f"{r.backend:<10} {r.what:<36} {r.netcon * scale:>8.3f}{unit:>2} "
            f"{r.baseline * scale:>8.3f}{unit:>2} {r.baseline_name:<17} {r.ratio:>5.2f}x "
            f"{r.target:>5.1f}x   {'PASS' if r.passed else 'FAIL'}"
        )


@contextmanager
def statement_timer() -> Iterator[dict[str, list[float]]]:
    """Seconds spent in the database per SQL statement text, over every engine."""
    spent: dict[str, list[float]] = {}

    def before(conn: Any, _cursor: Any, _statement: str, *_args: Any) -> None:
        conn.info.setdefault("bench_started", []).append(time.perf_counter())

    def after(conn: Any, _cursor: Any, statement: str, *_args: Any) -> None:
        seconds = time.perf_counter() - conn.info["bench_started"].pop()
        entry = spent.setdefault(statement, [0, 0.0])
        entry[0] += 1
        entry[1] += seconds

    event.listen(Engine, "before_cursor_execute", before)
    event.listen(Engine, "after_cursor_execute", after)
    try:
        yield spent
    finally:
        event.remove(Engine, "before_cursor_execute", before)
        event.remove(Engine, "after_cursor_execute", after)


def profile_failures(backend: Backend, failures: Sequence[Result]) -> None:
    actions: dict[str, Callable[[str], object]] = {
        "floating create /16": netcon_floating,
        "floating delete /16": netcon_floating,
        f"network create {NETWORK_RANGE} {NETWORK_COUNT} {NETWORK_SIZE}": netcon_networks,
        f"launch mean, last {WINDOW} of /22": allocation_times,
        "launch mean, /16 99.7% used (extra)": full_network_times,
    }
    done: set[Callable[[str], object]] = set()
    for failure in failures:
        action = actions[failure.what]
        if action in done:
            continue
        done.add(action)
        url = backend.fresh()
        profiler = cProfile.Profile()
        with statement_timer() as spent:
            profiler.runcall(action, url)
        out = io.StringIO()
        pstats.Stats(profiler, stream=out).sort_stats("tottime").print_stats(15)
        print(f"\n== profile of {failure.what} on {backend.name} (by own time) ==")
        print(out.getvalue())
        print(f"== SQL statements of {failure.what} on {backend.name}, by total time ==")
        for statement, (count, seconds) in sorted(
            spent.items(), key=lambda item: item[1][1], reverse=True
        )[:6]:
            text = re.sub(r"^SELECT .*? FROM ", "SELECT ... FROM ", " ".join(statement.split()))
            print(f"{seconds:8.3f} s {count:6d}x  {text[:160]}")


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true",
                        help="one run of each figure, not the best of three")
    parser.add_argument("--pg", metavar="URL", help="also measure this PostgreSQL database "
                        "(its tables are emptied)")
    parser.add_argument("--strict", action="store_true", help="exit 1 when a target fails")
    parser.add_argument("--profile", action="store_true",
                        help="profile the operations behind failing targets")
    args = parser.parse_args(argv)
    runs = 1 if args.quick else 3

    backends: list[Backend] = [SqliteBackend()]
    if args.pg:
        backends.append(PostgresBackend(args.pg))
    results: list[Result] = []
    try:
        for backend in backends:
            print(f"measuring {backend.name} (best of {runs})...", flush=True)
            measured = measure_backend(backend, runs)
            results.extend(measured)
            if args.profile:
                profile_failures(backend, [r for r in measured if not r.passed])
    finally:
        for backend in backends:
            backend.close()
    print()
    print_table(results)
    failed = [r for r in results if not r.passed]
    print(f"\n{len(results) - len(failed)} of {len(results)} targets met")
    return 1 if failed and args.strict else 0


if __name__ == "__main__":
    sys.exit(main())
