"""Several processes allocate from one database at once, on SQLite and on PostgreSQL.

Each test hands a job to each of several worker processes (the 'spawn' start method, so
every worker has its own interpreter, engine and connections, as separate `netcon`
commands or hosts would). Every worker opens the database and reports ready; only when
all are ready does the test release them with a start message, so that their
transactions really overlap. The workers report what they got; the test then checks the
reports and the database against each other: no address or network is handed out twice,
and a pool that runs dry says so with its named error and nothing else.
"""

from __future__ import annotations

import multiprocessing
import queue
from collections import Counter
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any

import pytest

from core.config import Settings, load_settings
from core.errors import NetconError
from core.service import NetconService

WORKERS = 4
# Seconds a worker may take to start (import, open the database) and to finish its job.
START_TIMEOUT = 60
RUN_TIMEOUT = 120

Outcome = tuple[str, str, str]  # ("ok", who, address) or ("error", ErrorClass, message)


def _settings() -> Settings:
    return load_settings(paths=[], quota_fixed_ips=-1, quota_floating_ips=-1, host="h1")


@dataclass(frozen=True)
class Job:
    """What one worker does: launch the named instances, or allocate floating IPs."""

    action: str  # "launch" or "allocate_floating"
    project: str
    names: tuple[str, ...] = ()
    count: int = 0
    pool: str | None = None


def _attempt(service: NetconService, job: Job, name: str | None) -> Outcome:
    try:
        if job.action == "launch":
            assert name is not None
            view = service.launch_instance(job.project, name)
            return ("ok", name, view.addresses[0].address)
        floating = service.allocate_floating_ip(job.project, job.pool)
        return ("ok", job.project, floating.address)
    except NetconError as exc:
        return ("error", type(exc).__name__, str(exc))


def _run_job(db_url: str, job: Job, inbox: Any, outbox: Any, index: int) -> list[Outcome]:
    outcomes: list[Outcome] = []
    service: NetconService | None = None
    try:
        service = NetconService(db_url, _settings(), actor="concurrency-test")
        # Open the connection (and check the schema) before the start line, so the
        # workers race on allocation, not on start-up.
        service.list_projects()
    except Exception as exc:  # reported to the test, which fails on it
        outcomes.append(("crash", type(exc).__name__, str(exc)))
    outbox.put(("ready", index))
    inbox.get(timeout=START_TIMEOUT)  # the start line: every worker is released at once
    if service is None:
        return outcomes
    try:
        if job.action == "launch":
            outcomes = [_attempt(service, job, name) for name in job.names]
        else:
            outcomes = [_attempt(service, job, None) for _ in range(job.count)]
    except Exception as exc:
        outcomes.append(("crash", type(exc).__name__, str(exc)))
    finally:
        service.db.dispose()
    return outcomes


def _serve(index: int, inbox: Any, outbox: Any) -> None:
    """A worker process: runs one job at a time until it is sent None."""
    while (message := inbox.get()) is not None:
        db_url, job = message
        try:
            outcomes = _run_job(db_url, job, inbox, outbox, index)
        except Exception as exc:
            outcomes = [("crash", type(exc).__name__, str(exc))]
        outbox.put(("done", index, outcomes))


class WorkerPool:
    """Long-lived worker processes, so each test pays for allocation, not for imports.

    Every worker is a 'spawn'ed interpreter with its own engine per job, as separate
    `netcon` commands or hosts would be.
    """

    def __init__(self, size: int) -> None:
        self.size = size
        self.start()

    def start(self) -> None:
        context = multiprocessing.get_context("spawn")
        self.outbox = context.Queue()
        self.inboxes = [context.Queue() for _ in range(self.size)]
        self.processes = [
            context.Process(target=_serve, args=(index, inbox, self.outbox), daemon=True)
            for index, inbox in enumerate(self.inboxes)
        ]
        for process in self.processes:
            process.start()
        self.broken = False

    def _collect(self, kind: str, count: int, timeout: float) -> list[tuple[Any, ...]]:
        messages = []
        for _ in range(count):
            try:
                message = self.outbox.get(timeout=timeout)
            except queue.Empty:
                self.broken = True
                pytest.fail(f"a worker process did not report {kind!r} in {timeout} s")
            assert message[0] == kind, message
            messages.append(message)
        return messages

    def run(self, db_url: str, jobs: Sequence[Job]) -> list[Outcome]:
        """Run each job in its own worker, all released at once; every outcome."""
        assert len(jobs) <= len(self.inboxes)
        inboxes = self.inboxes[: len(jobs)]
        for inbox, job in zip(inboxes, jobs, strict=True):
            inbox.put((db_url, job))
        self._collect("ready", len(jobs), START_TIMEOUT)
        for inbox in inboxes:
            inbox.put("go")
        outcomes = [
            outcome
            for message in self._collect("done", len(jobs), RUN_TIMEOUT)
            for outcome in message[2]
        ]
        crashes = [o for o in outcomes if o[0] == "crash"]
        assert not crashes, f"worker crashed: {crashes}"
        return outcomes

    def close(self) -> None:
        for inbox in self.inboxes:
            inbox.put(None)
        for process in self.processes:
            process.join(timeout=10)
            if process.is_alive():
                process.kill()
                process.join()


@pytest.fixture(scope="module")
def worker_pool() -> Iterator[WorkerPool]:
    pool = WorkerPool(WORKERS)
    try:
        yield pool
    finally:
        pool.close()


@pytest.fixture
def workers(worker_pool: WorkerPool) -> Iterator[WorkerPool]:
    yield worker_pool
    # A test that timed out leaves the workers mid-protocol; start afresh after it.
    if worker_pool.broken:
        worker_pool.close()
        worker_pool.start()


def _ok(outcomes: list[Outcome]) -> list[Outcome]:
    return [o for o in outcomes if o[0] == "ok"]


def _errors(outcomes: list[Outcome]) -> Counter[str]:
    return Counter(o[1] for o in outcomes if o[0] == "error")


def _error_messages(outcomes: list[Outcome]) -> list[str]:
    return [f"{o[1]}: {o[2]}" for o in outcomes if o[0] == "error"]


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def db_url(request: pytest.FixtureRequest) -> str:
    """The same test against a SQLite file and against a fresh PostgreSQL database."""
    fixture = "sqlite_url" if request.param == "sqlite" else "pg_url"
    return str(request.getfixturevalue(fixture))


def _service(db_url: str) -> NetconService:
    return NetconService(db_url, _settings(), actor="concurrency-test")


def _one_network(service: NetconService, manager: str, cidr: str) -> str:
    """One FlatDHCP or VLAN network of ``cidr``; returns its CIDR."""
    size = 1 << (32 - int(cidr.split("/")[1]))
    if manager == "vlan":
        (network,) = service.create_networks(cidr, 1, size, 200, 2000, manager="vlan")
    else:
        (network,) = service.create_networks(cidr, 1, size, manager="flatdhcp")
    return network.cidr


def _launch_jobs(projects: Sequence[str], per_worker: int) -> list[Job]:
    """WORKERS jobs; worker i launches into projects[i % len(projects)]."""
    return [
        Job(
            "launch",
            projects[index % len(projects)],
            names=tuple(f"w{index}-i{n}" for n in range(per_worker)),
        )
        for index in range(WORKERS)
    ]


def _projects_for(manager: str) -> list[str]:
    # Under VLAN one project owns the network; FlatDHCP's network is shared, so two
    # projects launch into it (they take different project locks and meet on the
    # fixed-IP rows themselves).
    return ["solo"] if manager == "vlan" else ["alpha", "beta"]


@pytest.mark.parametrize("manager", ["flatdhcp", "vlan"])
def test_concurrent_launches_get_distinct_fixed_ips(
    workers: WorkerPool, db_url: str, manager: str
) -> None:
    service = _service(db_url)
    cidr = _one_network(service, manager, "10.20.0.0/24")
    projects = _projects_for(manager)
    for project in projects:
        service.create_project(project, manager)
    per_worker = 10

    outcomes = workers.run(db_url, _launch_jobs(projects, per_worker))

    assert not _error_messages(outcomes)
    addresses = [address for _, _, address in _ok(outcomes)]
    assert len(addresses) == WORKERS * per_worker
    assert len(set(addresses)) == len(addresses), Counter(addresses).most_common(3)
    instances = service.list_instances()
    assert len(instances) == WORKERS * per_worker
    stored = {i.name: i.addresses[0].address for i in instances}
    assert stored == {name: address for _, name, address in _ok(outcomes)}
    assert {i.addresses[0].network for i in instances} == {cidr}
    assert service.get_network(cidr).used == WORKERS * per_worker


@pytest.mark.parametrize(
    ("manager", "usable"),
    [
        # A /28 holds 16 addresses: network, gateway and broadcast stay reserved, and
        # under VLAN the project's VPN address too.
        ("flatdhcp", 13),
        ("vlan", 12),
    ],
)
def test_demand_beyond_the_pool_fails_with_no_more_fixed_ips(
    workers: WorkerPool, db_url: str, manager: str, usable: int
) -> None:
    service = _service(db_url)
    cidr = _one_network(service, manager, "10.21.0.0/28")
    projects = _projects_for(manager)
    for project in projects:
        service.create_project(project, manager)
    assert service.get_network(cidr).free == usable
    per_worker = 6  # 24 launches for 12 or 13 addresses

    outcomes = workers.run(db_url, _launch_jobs(projects, per_worker))

    addresses = [address for _, _, address in _ok(outcomes)]
    assert len(addresses) == usable
    assert len(set(addresses)) == usable
    assert _errors(outcomes) == Counter({"NoMoreFixedIps": WORKERS * per_worker - usable}), (
        _error_messages(outcomes)
    )
    assert all(cidr in message for message in _error_messages(outcomes))
    assert len(service.list_instances()) == usable
    network = service.get_network(cidr)
    assert (network.used, network.free) == (usable, 0)


def test_concurrent_floating_allocation_hands_out_each_address_once(
    workers: WorkerPool, db_url: str
) -> None:
    service = _service(db_url)
    # The usable hosts of a /28: 14 addresses for 4 projects asking for 5 each.
    assert service.create_floating_range("h1", "198.51.100.0/28", pool="public").addresses == 14
    projects = [f"tenant{index}" for index in range(WORKERS)]
    for project in projects:
        service.create_project(project, "flatdhcp")
    per_worker = 5
    jobs = [
        Job("allocate_floating", project, count=per_worker, pool="public") for project in projects
    ]

    outcomes = workers.run(db_url, jobs)

    taken = _ok(outcomes)
    assert len(taken) == 14
    assert len({address for _, _, address in taken}) == 14
    assert _errors(outcomes) == Counter({"NoMoreFloatingIps": WORKERS * per_worker - 14}), (
        _error_messages(outcomes)
    )
    assert all("public" in message for message in _error_messages(outcomes))
    stored = {f.address: f.project for f in service.list_floating_ips()}
    assert stored == {address: project for _, project, address in taken}


def test_first_launches_of_different_vlan_projects_take_different_networks(
    workers: WorkerPool, db_url: str
) -> None:
    service = _service(db_url)
    networks = service.create_networks("10.30.0.0/16", WORKERS + 1, 16, 300, 3000, manager="vlan")
    projects = [f"tenant{index}" for index in range(WORKERS)]
    for project in projects:
        service.create_project(project, "vlan")
    per_worker = 3
    jobs = [
        Job("launch", project, names=tuple(f"{project}-i{n}" for n in range(per_worker)))
        for project in projects
    ]

    outcomes = workers.run(db_url, jobs)

    assert not _error_messages(outcomes)
    owned: dict[str, str] = {}
    for project in projects:
        mine = service.list_networks(project=project)
        assert len(mine) == 1, f"{project} holds {[n.cidr for n in mine]}"
        owned[project] = mine[0].cidr
        assert {i.addresses[0].network for i in service.list_instances(project)} == {
            mine[0].cidr
        }
    assert len(set(owned.values())) == WORKERS
    unowned = [n.cidr for n in service.list_networks() if n.project is None]
    assert len(unowned) == len(networks) - WORKERS


def test_first_launches_of_one_vlan_project_share_one_network(
    workers: WorkerPool, db_url: str
) -> None:
    service = _service(db_url)
    service.create_networks("10.31.0.0/16", 3, 64, 400, 4000, manager="vlan")
    service.create_project("solo", "vlan")
    per_worker = 3

    outcomes = workers.run(db_url, _launch_jobs(["solo"], per_worker))

    assert not _error_messages(outcomes)
    assert len(_ok(outcomes)) == WORKERS * per_worker
    (network,) = service.list_networks(project="solo")
    assert {n.cidr for n in service.list_networks() if n.project is not None} == {network.cidr}
    instances = service.list_instances("solo")
    assert len(instances) == WORKERS * per_worker
    assert {i.addresses[0].network for i in instances} == {network.cidr}
    assert len({i.addresses[0].address for i in instances}) == WORKERS * per_worker
