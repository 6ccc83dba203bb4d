"""`netcon` with no command: the console, drawn before the service exists.

Opening the service means importing SQLAlchemy and the whole core, which takes longer
than Textual takes to draw. So when the database is one the service would open as it
is, the first view's rows are read on a bare driver connection (the networks listing of
:mod:`core.store.listing`, the same SQL the service runs), the console draws them, and
the service is opened in a thread once they are up; everything after goes through it.

Any other case (a command line that is more than ``--db`` and ``--read-only``, a
database that is missing, foreign, behind or ahead of this netcon, PostgreSQL, a
mistake in netcon.toml) returns None, and the command line opens the console the
ordinary way, refusing or creating as it always does.
"""

from __future__ import annotations

import argparse
from typing import TYPE_CHECKING

from core.config import load_settings
from core.paths import database_url
from core.store.listing import read_networks
from tui.settings import ConsoleMemory, load_console_settings

if TYPE_CHECKING:
    from core.service.api import NetconAPI


def _console_args(db: str | None, read_only: bool) -> argparse.Namespace:
    # What the parser makes of `netcon [--db URL] [--read-only]`.
    return argparse.Namespace(
        command=None, db=db, read_only=read_only, json=False, lock_timeout=None
    )


def _open_service(db: str | None, read_only: bool) -> NetconAPI:
    """The service, opened exactly as the command line opens it for the console."""
    from core.cli.context import Context

    return Context(_console_args(db, read_only)).service


def start_console(db: str | None, read_only: bool) -> int | None:
    """Run the console with its first rows read the lean way; its exit status, or None
    when the command line must open it instead."""
    try:
        settings = load_settings()
        console_settings = load_console_settings()
        url = database_url(db)
    except Exception:  # the command line meets it again, and says it
        return None
    listing = read_networks(url, settings.physical_mtu)
    if listing is None:
        return None
    from tui.needs_terminal import refused_without_terminal

    if (refused := refused_without_terminal()) is not None:
        return refused
    from tui.app import NetconApp
    from tui.calls import Opening

    opening = Opening(
        open=lambda: _open_service(db, read_only),
        settings=settings,
        url=listing.url,
        writable=listing.writable,
        first_rows={"networks": listing.networks},
    )
    app = NetconApp(opening, read_only, settings=console_settings, memory=ConsoleMemory())
    try:
        app.run()
        if app.open_error is not None:
            # The service could not be opened after all (the file went away, ...).
            raise app.open_error
    except BaseException as exc:  # reported as the command line reports it
        return _as_the_command_line_says(exc, db, read_only)
    return 0


def _as_the_command_line_says(error: BaseException, db: str | None, read_only: bool) -> int:
    """One line and an exit status for what ended the console, as the ordinary way
    reports it (or the traceback under NETCON_DEBUG)."""
    from core.cli.context import Context
    from core.cli.outcome import guarded

    def fail() -> int:
        raise error

    return guarded(Context(_console_args(db, read_only)), fail)
