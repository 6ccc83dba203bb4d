"""The command line as a shell script pays for it: whole processes, start-up included.

    python bench/bench_cli.py            # every figure
    python bench/bench_cli.py --quick    # fewer runs, 50 associations instead of 200

Each figure is the median of several runs of the installed `netcon` (the script beside
this interpreter), against baselines run in the same loop, turn about, with the same
interpreter:
  * start-up: `netcon --help` against `python -c pass` and `python -c "import sqlalchemy"`;
  * a read command (`network list` on the demo cloud, `floating list --json` on a /16
    pool) and a write command (`floating associate`) against `import sqlalchemy`;
  * `floating create HOST 172.16.0.0/16` against a bare Python process doing the same
    executemany insert into the same kind of database file (a copy of an empty netcon
    database: same tables, indexes, WAL journal and synchronous=NORMAL), and `floating
    delete` of it against a bare process doing the DELETE, plus `import sqlalchemy`;
  * 200 associations as 200 `netcon floating associate` processes against one
    `netcon batch` reading the same 200 lines.
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from pathlib import Path

PYTHON = sys.executable
NETCON = str(Path(sys.executable).parent / "netcon")
RANGE = "172.16.0.0/16"
FIRST, LAST = 0xAC100001, 0xAC10FFFE  # the /16's usable hosts

BARE_CREATE = """
import ipaddress, sqlite3, sys
db = sqlite3.connect(sys.argv[1], isolation_level=None)
db.execute("PRAGMA synchronous = NORMAL")
rows = [(str(ipaddress.IPv4Address(v)), v, "nova", "h1", "eth0", False)
        for v in range(int(sys.argv[2]), int(sys.argv[3]) + 1)]
db.execute("BEGIN IMMEDIATE")
db.execute("INSERT INTO floating_pools (name) VALUES ('nova')")
db.executemany("INSERT INTO floating_ips (address, address_int, pool, host, interface, "
               "auto_assigned) VALUES (?, ?, ?, ?, ?, ?)", rows)
db.execute("COMMIT")
"""
BARE_DELETE = """
import sqlite3, sys
db = sqlite3.connect(sys.argv[1], isolation_level=None)
db.execute("PRAGMA synchronous = NORMAL")
db.execute("BEGIN IMMEDIATE")
db.execute("DELETE FROM floating_ips WHERE address_int BETWEEN ? AND ?",
           (int(sys.argv[2]), int(sys.argv[3])))
db.execute("DELETE FROM floating_pools WHERE name = 'nova'")
db.execute("COMMIT")
"""


def run(argv: Sequence[str], env: dict[str, str], stdin: str | None = None) -> float:
    start = time.perf_counter()
    result = subprocess.run(
        list(argv), env=env, input=stdin, capture_output=True, text=True, check=False
    )
    elapsed = time.perf_counter() - start
    if result.returncode != 0:
        raise SystemExit(f"{' '.join(argv[:4])} ... failed: {result.stderr.strip()}")
    return elapsed


def paired(runs: int, subject: Callable[[], float], *baselines: Callable[[], float]) -> list[float]:
    """Medians of the subject and each baseline, run in turn so drift hits all alike."""
    times: list[list[float]] = [[] for _ in range(len(baselines) + 1)]
    for _ in range(runs):
        for index, call in enumerate((subject, *baselines)):
            times[index].append(call())
    return [statistics.median(t) for t in times]


def show(name: str, subject: float, baseline: float, what: str, goal: float | None) -> None:
    ratio = subject / baseline
    verdict = ""
    if goal is not None:
        verdict = f"  (goal ≤ {goal:.1f}×: {'met' if ratio <= goal else 'NOT met'})"
    print(f"{name:<44} {subject * 1000:8.0f} ms  {ratio:5.2f}× {what}{verdict}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true")
    options = parser.parse_args()
    runs = 5 if options.quick else 11
    associations = 50 if options.quick else 200
    if not Path(NETCON).exists():
        raise SystemExit(f"no netcon beside {PYTHON}: install the project first (pip install -e .)")

    work = Path(tempfile.mkdtemp(prefix="netcon-bench-cli-"))
    try:
        env = dict(
            os.environ,
            XDG_DATA_HOME=str(work / "data"),
            XDG_CONFIG_HOME=str(work / "config"),
            NETCON_DATABASE_URL=f"sqlite:///{work / 'demo.db'}",
        )
        env.pop("NETCON_DEBUG", None)
        netcon = [NETCON]
        run([*netcon, "demo"], env)
        empty = work / "empty.db"
        run([*netcon, "--db", f"sqlite:///{empty}", "init"], env)
        pool = work / "pool.db"
        shutil.copy(empty, pool)
        run([*netcon, "--db", f"sqlite:///{pool}", "floating", "create", "h1", RANGE], env)

        def python(*code: str) -> Callable[[], float]:
            return lambda: run([PYTHON, *code], env)

        def command(*words: str) -> Callable[[], float]:
            return lambda: run([*netcon, *words], env)

        bare = python("-c", "pass")
        sqlalchemy = python("-c", "import sqlalchemy")
        print(f"interpreter: {PYTHON}; {runs} runs each, medians, baselines run in turn\n")

        help_, pass_, sqla = paired(runs, command("--help"), bare, sqlalchemy)
        print(f"{'python -c pass':<44} {pass_ * 1000:8.0f} ms")
        print(f"{'python -c ' + repr('import sqlalchemy'):<44} {sqla * 1000:8.0f} ms")
        show("netcon --help", help_, pass_, "python -c pass", None)
        show("netcon --help", help_, sqla, "import sqlalchemy", None)
        sub_help, sqla = paired(runs, command("floating", "associate", "--help"), sqlalchemy)
        show("netcon floating associate --help", sub_help, sqla, "import sqlalchemy", None)

        listing, sqla = paired(runs, command("network", "list"), sqlalchemy)
        show("netcon network list (demo cloud)", listing, sqla, "import sqlalchemy", 2.0)
        big, sqla = paired(
            runs,
            command("--db", f"sqlite:///{pool}", "floating", "list", "--json"),
            sqlalchemy,
        )
        show("netcon floating list --json (/16 pool)", big, sqla, "import sqlalchemy", 2.0)

        # A write that changes something every time: associate and disassociate in turn.
        toggle = {"associated": True}

        def associate() -> float:
            words = (
                ["floating", "disassociate", "203.0.113.1"]
                if toggle["associated"]
                else ["floating", "associate", "203.0.113.1", "web1"]
            )
            toggle["associated"] = not toggle["associated"]
            return run([*netcon, *words], env)

        write, sqla = paired(runs, associate, sqlalchemy)
        show("netcon floating (dis)associate", write, sqla, "import sqlalchemy", 2.5)

        print()
        target = work / "bulk.db"
        url = f"sqlite:///{target}"
        creates: list[float] = []
        bare_creates: list[float] = []
        deletes: list[float] = []
        bare_deletes: list[float] = []
        imports: list[float] = []
        for _ in range(max(3, runs // 2)):
            for subject in ("netcon", "bare"):
                for suffix in ("", "-wal", "-shm"):
                    Path(f"{target}{suffix}").unlink(missing_ok=True)
                shutil.copy(empty, target)
                if subject == "netcon":
                    creates.append(
                        run([*netcon, "--db", url, "floating", "create", "h1", RANGE], env)
                    )
                    deletes.append(run([*netcon, "--db", url, "floating", "delete", RANGE], env))
                else:
                    bounds = (str(FIRST), str(LAST))
                    bare_creates.append(run([PYTHON, "-c", BARE_CREATE, str(target), *bounds], env))
                    bare_deletes.append(run([PYTHON, "-c", BARE_DELETE, str(target), *bounds], env))
                    imports.append(sqlalchemy())
        create, bare_create = statistics.median(creates), statistics.median(bare_creates)
        delete, bare_delete = statistics.median(deletes), statistics.median(bare_deletes)
        sqla = statistics.median(imports)
        print(f"{'bare executemany process (65,534 rows)':<44} {bare_create * 1000:8.0f} ms")
        print(f"{'bare DELETE process':<44} {bare_delete * 1000:8.0f} ms")
        show(f"netcon floating create h1 {RANGE}", create, bare_create, "bare executemany", 2.0)
        show(
            f"netcon floating delete {RANGE}",
            delete,
            bare_delete + sqla,
            "bare DELETE + import sqlalchemy",
            2.0,
        )

        print()
        lines = []
        for index in range(associations):
            lines.append(f"floating associate 198.18.{index // 250}.{index % 250 + 1} vm{index}")
        batch_db = work / "batch.db"
        run([*netcon, "--db", f"sqlite:///{batch_db}", "init"], env)
        setup = ["project create p --manager flatdhcp"]
        run(
            [
                *netcon,
                "--db",
                f"sqlite:///{batch_db}",
                "network",
                "create",
                "--manager",
                "flatdhcp",
                "--bridge",
                "brb",
                "10.200.0.0/22",
            ],
            env,
        )
        script = "\n".join(
            [*setup, "floating create h1 198.18.0.0/22"]
            + [f"instance launch --project p vm{i}" for i in range(associations)]
            + ["floating allocate --project p" for _ in range(associations)]
        )
        env_batch = dict(env, NETCON_DATABASE_URL=f"sqlite:///{batch_db}")
        quota = work / "config" / "netcon"
        quota.mkdir(parents=True, exist_ok=True)
        (quota / "netcon.toml").write_text("quota_floating_ips = -1\n")
        run([*netcon, "batch"], env_batch, stdin=script)
        undo = "\n".join(
            line.replace("associate", "disassociate").rsplit(" ", 1)[0] for line in lines
        )

        def separately() -> float:
            start = time.perf_counter()
            for line in lines:
                run([*netcon, *line.split()], env_batch)
            elapsed = time.perf_counter() - start
            run([*netcon, "batch"], env_batch, stdin=undo)
            return elapsed

        def batched() -> float:
            elapsed = run([*netcon, "batch"], env_batch, stdin="\n".join(lines))
            run([*netcon, "batch"], env_batch, stdin=undo)
            return elapsed

        apart, together = paired(1 if options.quick else 3, separately, batched)
        print(f"{associations} associations, one process each {apart * 1000:11.0f} ms")
        print(f"{associations} associations, one netcon batch {together * 1000:11.0f} ms")
        print(f"{'batch speed-up':<44} {apart / together:14.1f}×")
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
