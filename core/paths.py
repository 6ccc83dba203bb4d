"""Where netcon keeps its files by default; free of imports so every command can ask."""

from __future__ import annotations

import os
from pathlib import Path


def data_dir() -> Path:
    base = os.environ.get("XDG_DATA_HOME") or str(Path.home() / ".local" / "share")
    return Path(base) / "netcon"


def default_database_url() -> str:
    return f"sqlite:///{data_dir() / 'netcon.db'}"


def database_url(given: str | None = None) -> str:
    """``--db``, else NETCON_DATABASE_URL, else the embedded default.

    An empty ``--db`` or NETCON_DATABASE_URL is refused, not read as "not given": it is
    what a script passes when the variable it meant is unset, and the default database
    would then be changed in place of the one it named."""
    if given is not None:
        return _not_empty("--db", given, "leave --db out for NETCON_DATABASE_URL or the default")
    from_environment = os.environ.get("NETCON_DATABASE_URL")
    if from_environment is not None:
        return _not_empty("NETCON_DATABASE_URL", from_environment, "unset it for the default")
    return default_database_url()


def _not_empty(field: str, url: str, otherwise: str) -> str:
    if not url.strip():
        from core.errors import InvalidInput

        raise InvalidInput(
            field,
            f"is empty: give a database URL (sqlite:///PATH or postgresql://...), or {otherwise}",
        )
    return url


def config_paths() -> list[Path]:
    base = os.environ.get("XDG_CONFIG_HOME") or str(Path.home() / ".config")
    return [Path("/etc/netcon/netcon.toml"), Path(base) / "netcon" / "netcon.toml"]
