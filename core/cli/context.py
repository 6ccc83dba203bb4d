"""What every command handler gets: its arguments, the service (opened on first use) and
the output."""

from __future__ import annotations

import argparse
import os
import sys
from functools import cached_property
from typing import IO, TYPE_CHECKING

from core.cli.frontends import Console, Serve
from core.cli.output import Output
from core.defaults import LOCK_TIMEOUT

if TYPE_CHECKING:
    from core.config import Settings
    from core.service import NetconService

# Commands that make a database on purpose.
CREATING = ("init", "demo")


class Context:
    def __init__(
        self,
        args: argparse.Namespace,
        *,
        out: IO[str] | None = None,
        console: Console | None = None,
        serve: Serve | None = None,
        service: NetconService | None = None,
        compact: bool = False,
    ) -> None:
        self.args = args
        self.out = out or sys.stdout
        self.console = console
        # Serves the console to browsers (`netcon serve`); given with the console.
        self.serve = serve
        self.output = Output(self.out, as_json=self.json, compact=compact)
        if service is not None:
            self.__dict__["service"] = service

    @property
    def json(self) -> bool:
        return bool(getattr(self.args, "json", False))

    @property
    def database_url(self) -> str | None:
        given = getattr(self.args, "db", None)
        return given if given is not None else os.environ.get("NETCON_DATABASE_URL")

    @cached_property
    def settings(self) -> Settings:
        """netcon.toml's settings, each checked; read without opening the database."""
        if "service" in self.__dict__:
            return self.service.settings
        from core.config import load_settings

        return load_settings()

    @cached_property
    def service(self) -> NetconService:
        # Imported here: --help, completion and the lease hook never pay for the
        # database layer.
        from core.paths import database_url, default_database_url
        from core.service import NetconService

        url = database_url(getattr(self.args, "db", None))
        words = [getattr(self.args, "command", None), getattr(self.args, "action", None)]
        command = " ".join(w for w in words if w)
        # Only a command that makes state on purpose, or the embedded default, may
        # create a database: a mistyped --db is refused, not filled.
        create = command in CREATING or url == default_database_url()
        service = NetconService(
            url,
            self.settings,
            create=create,
            lock_timeout=self.lock_timeout,
            application=f"netcon {command}".strip(),
        )
        service.db.on_wait = self._report_wait
        # A command's changes reach this host at once when auto_apply says so: the one
        # who opens the service for the command decides, not the service itself.
        from core.service.hostsync import install_auto_apply

        install_auto_apply(service)
        if service.db.created and command not in CREATING:
            print(f"netcon: created database {service.db.safe_url}", file=sys.stderr)
        return service

    def close(self) -> None:
        """Close the database, if the command opened it."""
        service = self.__dict__.get("service")
        if service is not None:
            service.db.dispose()

    @property
    def lock_timeout(self) -> float:
        value = getattr(self.args, "lock_timeout", None)
        return LOCK_TIMEOUT if value is None else float(value)

    def _report_wait(self, waited: float, holder: str) -> None:
        print(
            f"netcon: waiting for the database's write lock, held by {holder}: "
            f"{waited:.0f} s of {self.lock_timeout:.0f} s (--lock-timeout)",
            file=sys.stderr,
        )
