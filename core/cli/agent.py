"""`netcon agent`: keep this host equal to the database until stopped (SIGTERM, ctrl+c)."""

from __future__ import annotations

import signal
import sys
import threading
from datetime import datetime

from core.cli.context import Context
from core.cli.spec import Command, arg, netns_arg


def run_agent(ctx: Context) -> int:
    from core import validate
    from core.agent import Agent
    from core.errors import DatabaseUnreachable

    stop = threading.Event()
    for number in (signal.SIGTERM, signal.SIGINT):
        signal.signal(number, lambda *_: stop.set())

    def say(line: str) -> None:
        stamp = datetime.now().isoformat(sep=" ", timespec="seconds")
        print(f"{stamp} {line}", file=sys.stderr, flush=True)

    # A host booting before its database server (or beside a restarting one) waits for
    # it, as it would once running; a database that refuses (missing, foreign) ends it.
    while True:
        try:
            service = ctx.service
            break
        except DatabaseUnreachable as exc:
            say(f"database unreachable ({exc.message}); retrying")
            if stop.wait(2.0):
                return 0
    host = validate.host_name("--host", ctx.args.host or service.settings.host)

    Agent(service, host, ctx.args.netns, on_apply=say).run(stop)
    return 0


command = Command(
    "agent",
    "keep this host equal to the database: wake on change, heartbeat, record what is applied",
    (
        arg("--host", complete="host", help="the host it serves (default: the host setting)"),
        netns_arg(),
    ),
    run_agent,
)
