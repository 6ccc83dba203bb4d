"""What the `netcon` executable hands the headless command line: the console and the
browser server, as callables, so that the command line never imports the console."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import ssl

    from core.service import NetconService

# Opens the console on a service; given by the `netcon` executable, absent when the
# command line runs headless (`python -m core.cli`).
Console = Callable[["NetconService", bool], int]


@dataclass(frozen=True)
class ServeOptions:
    """A checked `netcon serve` command line."""

    host: str  # the address to bind, as the socket takes it
    port: int  # 0: any free port
    # How the printed URL names the host (an IPv6 address in brackets).
    url_host: str
    loopback: bool
    tls: ssl.SSLContext | None
    read_only: bool
    max_sessions: int
    # The token from --token-file; None: a random one-time token is made at start.
    token: str | None
    token_file: Path | None
    # The database the consoles open (--db or NETCON_DATABASE_URL), None: the default.
    database: str | None


# Runs the server until it is stopped; given by the `netcon` executable.
Serve = Callable[[ServeOptions], int]
