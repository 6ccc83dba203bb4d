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
    """``--db``, else NETCON_DATABASE_URL, else the embedded default."""
    return given or os.environ.get("NETCON_DATABASE_URL") or default_database_url()


def config_paths() -> list[Path]:
    base = os.environ.get("XDG_CONFIG_HOME") or str(Path.home() / ".config")
    return [Path("/etc/netcon/netcon.toml"), Path(base) / "netcon" / "netcon.toml"]
