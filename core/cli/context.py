"""What every command handler gets: its arguments, the service (opened on first use) and
the output."""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Callable
from functools import cached_property
from typing import IO, TYPE_CHECKING

from core.cli.output import Output

if TYPE_CHECKING:
    from core.service import NetconService

# Opens the console on a service; given by the `netcon` executable, absent when the
# command line runs headless (`python -m core.cli`).
Console = Callable[["NetconService", bool], int]


class Context:
    def __init__(
        self,
        args: argparse.Namespace,
        *,
        out: IO[str] | None = None,
        console: Console | None = None,
        service: NetconService | None = None,
        compact: bool = False,
    ) -> None:
        self.args = args
        self.out = out or sys.stdout
        self.console = console
        self.output = Output(self.out, as_json=self.json, compact=compact)
        if service is not None:
            self.__dict__["service"] = service

    @property
    def json(self) -> bool:
        return bool(getattr(self.args, "json", False))

    @property
    def database_url(self) -> str | None:
        return getattr(self.args, "db", None) or os.environ.get("NETCON_DATABASE_URL") or None

    @cached_property
    def service(self) -> NetconService:
        # Imported here: --help, completion and the lease hook never pay for the
        # database layer.
        from core.config import load_settings
        from core.service import NetconService

        return NetconService(self.database_url, load_settings())
