"""Builders shared by the core tests."""

from __future__ import annotations

import random
import sqlite3
from datetime import datetime
from pathlib import Path
from typing import Any

from core.config import load_settings
from core.service import NetconService

FIXED_TIME = datetime(2026, 11, 1, 12, 0, 0)


def make_service(path: Path, url: str | None = None, **settings: Any) -> NetconService:
    values: dict[str, Any] = {"host": "nethost1", "state_dir": str(path / "state")}
    values.update(settings)
    return NetconService(
        url or f"sqlite:///{path / 'netcon.db'}",
        load_settings(paths=[], **values),
        actor="tester",
        clock=lambda: FIXED_TIME,
        rng=random.Random(7),
    )


def sqlite_dump(url: str) -> list[str]:
    """Every row of every table, for 'nothing was written' checks."""
    path = url.removeprefix("sqlite:///")
    connection = sqlite3.connect(path)
    try:
        return list(connection.iterdump())
    finally:
        connection.close()
