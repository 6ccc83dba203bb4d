"""`netcon batch` (also `netcon -`): many commands from standard input, one process.

Each line is a command as it would follow `netcon` in a shell (quoting and `#`
comments as in sh). Every change is still its own transaction; the host is brought in
line once, after the last line, instead of after each one. The first failing line
stops the batch with its exit status, unless `--force` is given (as `ip -force -batch`):
then every line runs and the exit status is the worst one seen.
"""

from __future__ import annotations

import argparse
import shlex
import sys
from collections.abc import Iterator
from typing import IO

from core.cli.collector import resume as resume_collector
from core.cli.context import Context
from core.cli.outcome import guarded, parse, report
from core.cli.parser import build_parser
from core.cli.spec import Command, arg
from core.errors import InvalidInput, NetconError

# The longest line a batch reads. A command line is a few names and addresses; the
# limit lets an overlong line (a runaway script, a file given by mistake) be refused as
# it is read, in time proportional to its length, where splitting it into words would
# take time growing with its square.
MAX_LINE = 8192


def run_batch(ctx: Context, lines: IO[str] | None = None) -> int:
    resume_collector()
    parser = build_parser(ctx.args.commands)
    worst = 0
    with ctx.service.deferred_changes():
        for number, line in enumerate(_lines(lines or sys.stdin), start=1):
            where = f"line {number}"
            if isinstance(line, int):
                error = InvalidInput(
                    "line", f"{line} characters, more than the {MAX_LINE} a batch line may have"
                )
                status = report(error, ctx.json, where=where)
            else:
                status = _run_line(ctx, parser, line, where)
            worst = max(worst, status)
            if status and not ctx.args.force:
                return status
    return worst


def _lines(stream: IO[str]) -> Iterator[str | int]:
    """Each line of ``stream``; for a line longer than MAX_LINE, its length instead (the
    rest of it is read past a piece at a time, never held whole)."""
    while True:
        line = stream.readline(MAX_LINE + 1)
        if not line:
            return
        if len(line) <= MAX_LINE or line.endswith("\n"):
            yield line
            continue
        length = len(line)
        while not line.endswith("\n"):
            line = stream.readline(1 << 16)
            if not line:
                break
            length += len(line)
        yield length - 1 if line.endswith("\n") else length


def _run_line(ctx: Context, parser: argparse.ArgumentParser, line: str, where: str) -> int:
    try:
        words = shlex.split(line, comments=True)
        if not words:
            return 0
        if words[0] in ("batch", "-"):
            raise InvalidInput("command", "a batch cannot start another batch")
        args = parse(parser, words)
    except ValueError as exc:  # unbalanced quotes
        return report(InvalidInput("quoting", str(exc)), ctx.json, where=where)
    except NetconError as exc:
        return report(exc, ctx.json, where=where)
    except SystemExit as exc:  # --help on a line: argparse printed it and wants to exit
        return int(exc.code or 0)
    if getattr(args, "command", None) is None:
        return report(InvalidInput("command", "missing"), ctx.json, where=where)
    if args.db is not None and args.db != ctx.database_url:
        return report(InvalidInput("--db", "a batch works on one database"), ctx.json, where=where)
    args.json = bool(args.json or ctx.json)
    line_ctx = Context(args, out=ctx.out, service=ctx.service, compact=True)
    return guarded(line_ctx, lambda: args.handler(line_ctx), where=where)


command = Command(
    "batch",
    "run commands read from standard input, one per line, in one process (also: netcon -)",
    (
        arg(
            "--force",
            action="store_true",
            help="go on after a failing line; exit with the worst status seen",
        ),
    ),
    run_batch,
)
