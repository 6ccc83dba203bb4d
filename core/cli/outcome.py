"""How a command ends: its arguments read, and every failure turned into one line and
an exit status."""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Callable
from typing import IO, TYPE_CHECKING

from core.cli.output import error_document
from core.errors import NetconError

if TYPE_CHECKING:
    from core.cli.context import Context

DEFAULTS = (("db", None), ("json", False), ("lock_timeout", None))


def parse(parser: argparse.ArgumentParser, words: list[str]) -> argparse.Namespace:
    args = parser.parse_args(words)
    for option, default in DEFAULTS:
        if not hasattr(args, option):
            setattr(args, option, default)
    return args


def guarded(
    context: Context,
    call: Callable[[], int | None],
    *,
    where: str = "",
    errors: IO[str] | None = None,
) -> int:
    """Run ``call``; a refusal or failure becomes one line on stderr and its exit status."""
    try:
        return int(call() or 0)
    except NetconError as exc:
        return report(exc, context.json, where=where, errors=errors)
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:
        # `netcon fixed list | head` closes the pipe early; that is not an error.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 0
    except Exception as exc:
        # A bug, not bad input: still one line, unless asked for the whole story.
        if os.environ.get("NETCON_DEBUG"):
            raise
        message = (
            f"internal error: {type(exc).__name__}: {' '.join(str(exc).split())} "
            "(NETCON_DEBUG=1 shows the traceback)"
        )
        return report_text(message, 1, context.json, where=where, errors=errors)


def report(
    exc: NetconError, as_json: bool, *, where: str = "", errors: IO[str] | None = None
) -> int:
    return report_text(
        exc.message,
        exc.exit_code,
        as_json,
        field=exc.field,
        rule=exc.rule,
        where=where,
        errors=errors,
    )


def report_text(
    message: str,
    status: int,
    as_json: bool,
    *,
    field: str | None = None,
    rule: str | None = None,
    where: str = "",
    errors: IO[str] | None = None,
) -> int:
    stream = errors or sys.stderr
    if as_json:
        stream.write(error_document(message, status, field, rule, where=where) + "\n")
    else:
        prefix = f"netcon: {where}: " if where else "netcon: "
        stream.write(prefix + message + "\n")
    return status
