"""How long `netcon batch` takes to refuse one very long line, as its length grows.

    python bench/bench_batch_lines.py            # 100 kB to 30 MB
    python bench/bench_batch_lines.py --quick    # fewer runs, up to 10 MB

A batch line is at most 8,192 characters; a longer one is refused as it is read, so
the time should grow with the input and no faster. Each figure is the fastest of several
whole processes (other load on the machine only ever adds to a run): the installed
`netcon batch` fed one line of `project create xxx...` on standard input, against the
same interpreter reading the very same input whole (`python -c "import sys;
sys.stdin.read()"`), run in the same loop, turn about. The columns: each process's
time, their ratio, and what each further megabyte costs over the shortest line refused
(8,193 characters) for netcon and over an empty input for the baseline; a flat netcon
column is time linear in the input.
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

NETCON = str(Path(sys.executable).parent / "netcon")


def timed(argv: list[str], data: Path, env: dict[str, str], status: int) -> float:
    with data.open("rb") as stdin:
        start = time.perf_counter()
        result = subprocess.run(argv, stdin=stdin, capture_output=True, env=env, check=False)
        elapsed = time.perf_counter() - start
    if result.returncode != status:
        raise SystemExit(f"{' '.join(argv)} exited {result.returncode}: {result.stderr[-300:]!r}")
    return elapsed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true")
    options = parser.parse_args()
    runs = 3 if options.quick else 7
    sizes = [100_000, 300_000, 1_000_000, 3_000_000, 10_000_000]
    if not options.quick:
        sizes.append(30_000_000)
    if not Path(NETCON).exists():
        raise SystemExit(f"no netcon beside {sys.executable}: install the project first")

    work = Path(tempfile.mkdtemp(prefix="netcon-bench-lines-"))
    try:
        env = dict(
            os.environ,
            XDG_DATA_HOME=str(work / "data"),
            XDG_CONFIG_HOME=str(work / "config"),
            NETCON_DATABASE_URL=f"sqlite:///{work / 'netcon.db'}",
        )
        env.pop("NETCON_DEBUG", None)
        subprocess.run([NETCON, "init"], env=env, capture_output=True, check=True)
        reader = [sys.executable, "-c", "import sys; sys.stdin.read()"]
        empty = work / "empty.txt"
        empty.write_text("")
        shortest = work / "shortest.txt"
        shortest.write_text("x" * 8193 + "\n")
        netcon_zero = min(timed([NETCON, "batch"], shortest, env, 2) for _ in range(runs))
        reader_zero = min(timed(reader, empty, env, 0) for _ in range(runs))
        print(
            f"shortest line refused: netcon batch {netcon_zero * 1000:.0f} ms; "
            f"the baseline on an empty input {reader_zero * 1000:.0f} ms"
        )
        print(
            f"{'line':>9} {'netcon batch':>13} {'baseline':>9} {'ratio':>6} "
            f"{'netcon per MB':>14} {'baseline per MB':>16}"
        )
        for size in sizes:
            data = work / f"line-{size}.txt"
            data.write_text("project create " + "x" * (size - 15) + "\n")
            netcon_times: list[float] = []
            reader_times: list[float] = []
            for _ in range(runs):
                netcon_times.append(timed([NETCON, "batch"], data, env, 2))
                reader_times.append(timed(reader, data, env, 0))
            subject, baseline = min(netcon_times), min(reader_times)
            netcon_per_mb = (subject - netcon_zero) / (size / 1e6)
            reader_per_mb = (baseline - reader_zero) / (size / 1e6)
            print(
                f"{size / 1000:>6.0f} kB {subject * 1000:>10.0f} ms {baseline * 1000:>6.0f} ms "
                f"{subject / baseline:>5.1f}× {netcon_per_mb * 1000:>11.1f} ms "
                f"{reader_per_mb * 1000:>13.1f} ms"
            )
            data.unlink()
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
