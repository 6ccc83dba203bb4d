"""The console's own settings and memory.

From netcon.toml (the same files as the core's settings) it reads three tables the
core leaves to it::

    [console]
    theme = "nord"          # until a theme is picked in the palette, which is kept
    refresh = 5             # seconds between refreshes; 0 turns them off

    [keys]                  # binding id = key(s); `?` lists the ids
    "floating.release" = "ctrl+d"

    [contexts.production]   # how the header marks a database
    database = "postgresql://*@db.prod.example/*"   # a glob over the URL (no password)
    label = "PRODUCTION"
    color = "red"
    read_only = true        # optional: open this database read-only

What it remembers (the ``:`` history, the theme last picked, the views shown with
every column, the columns chosen per view) lives under
``$XDG_STATE_HOME/netcon/`` (default ``~/.local/state/netcon/``).
"""

from __future__ import annotations

import fnmatch
import json
import os
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from core.config import config_files
from core.errors import InvalidInput

HISTORY_SIZE = 100


@dataclass(frozen=True)
class ContextStyle:
    """How the header marks one database: a label, a colour, maybe read-only."""

    name: str
    database: str
    label: str
    color: str
    read_only: bool = False

    def matches(self, url: str) -> bool:
        return url == self.database or fnmatch.fnmatchcase(url, self.database)


@dataclass(frozen=True)
class ConsoleSettings:
    theme: str | None = None
    refresh: float = 5.0
    keys: Mapping[str, str] = field(default_factory=dict)
    contexts: tuple[ContextStyle, ...] = ()

    def context_for(self, url: str) -> ContextStyle | None:
        return next((c for c in self.contexts if c.matches(url)), None)


def _string(where: str, value: object) -> str:
    if not isinstance(value, str) or not value.strip():
        raise InvalidInput(where, "must be a non-empty string")
    return value


def load_console_settings(paths: list[Path] | None = None) -> ConsoleSettings:
    """The [console], [keys] and [contexts] tables; later files win, key by key."""
    theme: str | None = None
    refresh = 5.0
    keys: dict[str, str] = {}
    contexts: dict[str, ContextStyle] = {}
    for path in config_files(paths):
        try:
            document = tomllib.loads(path.read_text())
        except (OSError, tomllib.TOMLDecodeError) as exc:
            raise InvalidInput(str(path), f"is not valid TOML ({exc})") from None
        console = document.get("console", {})
        if not isinstance(console, dict):
            raise InvalidInput(f"{path}: console", "must be a table")
        for name, value in console.items():
            where = f"{path}: console.{name}"
            if name == "theme":
                theme = _string(where, value)
            elif name == "refresh":
                if isinstance(value, bool) or not isinstance(value, int | float) or value < 0:
                    raise InvalidInput(where, "must be a number of seconds, 0 or more")
                refresh = float(value)
            else:
                raise InvalidInput(where, "is not a console setting (theme, refresh)")
        table = document.get("keys", {})
        if not isinstance(table, dict):
            raise InvalidInput(f"{path}: keys", "must be a table of binding id = key")
        for binding_id, value in table.items():
            keys[binding_id] = _string(f"{path}: keys.{binding_id}", value)
        table = document.get("contexts", {})
        if not isinstance(table, dict):
            raise InvalidInput(f"{path}: contexts", "must be a table of named tables")
        for name, entry in table.items():
            where = f"{path}: contexts.{name}"
            if not isinstance(entry, dict):
                raise InvalidInput(where, "must be a table (database, label, color)")
            unknown = set(entry) - {"database", "label", "color", "read_only"}
            if unknown:
                raise InvalidInput(f"{where}.{sorted(unknown)[0]}", "is not a context setting")
            read_only = entry.get("read_only", False)
            if not isinstance(read_only, bool):
                raise InvalidInput(f"{where}.read_only", "must be true or false")
            contexts[name] = ContextStyle(
                name=name,
                database=_string(f"{where}.database", entry.get("database")),
                label=_string(f"{where}.label", entry.get("label", name)),
                color=_string(f"{where}.color", entry.get("color", "ansi_red")),
                read_only=read_only,
            )
    return ConsoleSettings(theme, refresh, keys, tuple(contexts.values()))


def state_dir() -> Path:
    base = os.environ.get("XDG_STATE_HOME") or str(Path.home() / ".local" / "state")
    return Path(base) / "netcon"


class ConsoleMemory:
    """The ``:`` history and the theme last picked, kept between runs.

    Losing them is never worth an error: an unreadable or unwritable file is skipped.
    """

    def __init__(self, directory: Path | None = None) -> None:
        self.directory = directory if directory is not None else state_dir()

    @property
    def _history_path(self) -> Path:
        return self.directory / "history"

    @property
    def _state_path(self) -> Path:
        return self.directory / "console.json"

    def history(self) -> list[str]:
        try:
            return self._history_path.read_text().splitlines()[-HISTORY_SIZE:]
        except OSError:
            return []

    def remember(self, command: str) -> list[str]:
        entries = [e for e in self.history() if e != command] + [command]
        entries = entries[-HISTORY_SIZE:]
        self._write(self._history_path, "\n".join(entries) + "\n")
        return entries

    def _state(self) -> dict[str, object]:
        try:
            state = json.loads(self._state_path.read_text())
        except (OSError, ValueError):
            return {}
        return state if isinstance(state, dict) else {}

    def _keep(self, name: str, value: object) -> None:
        state = self._state()
        state[name] = value
        self._write(self._state_path, json.dumps(state, sort_keys=True) + "\n")

    def theme(self) -> str | None:
        value = self._state().get("theme")
        return value if isinstance(value, str) else None

    def keep_theme(self, theme: str) -> None:
        self._keep("theme", theme)

    def wide(self) -> list[str]:
        """The views shown with every column (`w`)."""
        value = self._state().get("wide")
        return [v for v in value if isinstance(v, str)] if isinstance(value, list) else []

    def keep_wide(self, views: set[str]) -> None:
        self._keep("wide", sorted(views))

    def hidden_columns(self) -> dict[str, list[str]]:
        """The columns each view does not show, by column key (`C`)."""
        value = self._state().get("hidden_columns")
        if not isinstance(value, dict):
            return {}
        return {
            view: [c for c in keys if isinstance(c, str)]
            for view, keys in value.items()
            if isinstance(view, str) and isinstance(keys, list)
        }

    def keep_hidden_columns(self, hidden: dict[str, list[str]]) -> None:
        self._keep("hidden_columns", {v: sorted(k) for v, k in hidden.items() if k})

    def _write(self, path: Path, text: str) -> None:
        try:
            self.directory.mkdir(parents=True, exist_ok=True)
            temporary = path.with_suffix(".tmp")
            temporary.write_text(text)
            temporary.replace(path)
        except OSError:
            pass
