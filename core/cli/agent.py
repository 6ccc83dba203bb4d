"""`netcon agent`: keep this host equal to the database until stopped (SIGTERM, ctrl+c)."""

from __future__ import annotations

import signal
import sys
import threading
from datetime import datetime

from core.cli.collector import resume as resume_collector
from core.cli.context import Context
from core.cli.spec import Command, arg, netns_arg


def run_agent(ctx: Context) -> int:
    from core import validate
    from core.agent import Agent
    from core.errors import DatabaseUnreachable
    from core.linux.namespace import check_netns

    # Everything the agent was given is checked before it touches the database: an agent
    # that would refuse must not heartbeat first, and show its host alive.
    poll = None if ctx.args.poll is None else _seconds("--poll", ctx.args.poll)
    settings = ctx.settings
    host = validate.host_name("--host", ctx.args.host or settings.host)
    if ctx.args.netns is None:
        check_netns(settings.netns, field="netns")
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
    # The agent is that host: it heartbeats with this machine's settings (its vpn_ip).
    service.settings = service.settings.replace(host=host)

    resume_collector()
    Agent(service, host, ctx.args.netns, on_apply=say, poll=poll).run(stop)
    return 0


def _seconds(field: str, text: str) -> float:
    from core.errors import InvalidInput

    try:
        value = float(text)
    except ValueError:
        value = -1.0
    if not 0.01 <= value <= 3600:
        raise InvalidInput(field, f"must be a number of seconds from 0.01 to 3600, not {text!r}")
    return value


command = Command(
    "agent",
    "keep this host equal to the database: wake on change, heartbeat, record what is applied",
    (
        arg("--host", complete="host", help="the host it serves (default: the host setting)"),
        netns_arg(),
        arg(
            "--poll",
            metavar="SECONDS",
            help="look at the database every SECONDS instead of listening for changes "
            "(a baseline to compare with; notifications are what an agent should use)",
        ),
    ),
    run_agent,
)
