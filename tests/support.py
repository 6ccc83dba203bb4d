"""Builders shared by the core tests."""

from __future__ import annotations

import os
import random
import shutil
import sqlite3
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest

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


@contextmanager
def reading_user(tmp_path: Path) -> Iterator[str]:
    """A throwaway user who may read the test's files, and run this interpreter; removed
    afterwards. Skips the test where it cannot be made (not root, no useradd or setfacl)."""
    if os.geteuid() != 0 or not shutil.which("useradd") or not shutil.which("setfacl"):
        pytest.skip("needs root, useradd and setfacl (Debian: passwd, acl)")
    name = f"ncr{os.getpid() % 100000}"
    subprocess.run(["useradd", "-M", "-s", "/bin/false", name], check=True)
    granted: list[Path] = []
    try:
        # Let the user reach the interpreter and this checkout, wherever root keeps them.
        # (A virtualenv's interpreter is a link into its base installation: both count.)
        targets = (Path(sys.prefix), Path(sys.base_prefix), Path(__file__).resolve().parent)
        for target in (*targets, tmp_path):
            for folder in [target, *target.parents]:
                if folder.stat().st_mode & 0o001 == 0 and folder not in granted:
                    subprocess.run(["setfacl", "-m", f"u:{name}:x", str(folder)], check=True)
                    granted.append(folder)
        yield name
    finally:
        for folder in granted:
            subprocess.run(["setfacl", "-x", f"u:{name}", str(folder)], check=False)
        subprocess.run(["userdel", name], check=False)
