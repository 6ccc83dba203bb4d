"""What every command handler gets: its arguments, the service and the output."""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Callable, Sequence
from functools import cached_property
from typing import Any

from core.config import load_settings
from core.service import NetconService
from core.views import View

Column = tuple[str, Callable[[Any], object]]


def column(header: str, attribute: str) -> Column:
    return header, lambda row: getattr(row, attribute)


class Context:
    def __init__(self, args: argparse.Namespace, out: Any = None) -> None:
        self.args = args
        self.out = out or sys.stdout

    @cached_property
    def service(self) -> NetconService:
        url = self.args.db or os.environ.get("NETCON_DATABASE_URL") or None
        return NetconService(url, load_settings())

    @property
    def json(self) -> bool:
        return bool(getattr(self.args, "json", False))

    def emit(
        self, result: View | Sequence[View] | dict[str, Any], columns: Sequence[Column]
    ) -> None:
        """Print ``result`` as a table (or a key/value list for one item), or as JSON."""
        if self.json:
            print(json.dumps(_plain(result), indent=2, sort_keys=False), file=self.out)
            return
        if isinstance(result, View):
            width = max(len(h) for h, _ in columns)
            for header, get in columns:
                print(f"{header:<{width}}  {_cell(get(result))}", file=self.out)
            return
        if isinstance(result, dict):
            for key, value in result.items():
                print(f"{key}: {_cell(value)}", file=self.out)
            return
        rows = [[_cell(get(row)) for _, get in columns] for row in result]
        headers = [h for h, _ in columns]
        widths = [max([len(h)] + [len(r[i]) for r in rows]) for i, h in enumerate(headers)]
        print(
            "  ".join(h.ljust(w) for h, w in zip(headers, widths, strict=True)).rstrip(),
            file=self.out,
        )
        for row in rows:
            print(
                "  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)).rstrip(),
                file=self.out,
            )

    def say(self, text: str, **data: Any) -> None:
        """A one-line confirmation; with --json, the data behind it."""
        if self.json:
            print(json.dumps(data or {"message": text}), file=self.out)
        else:
            print(text, file=self.out)


def _plain(result: object) -> object:
    if isinstance(result, View):
        return result.to_dict()
    if isinstance(result, dict):
        return {k: _plain(v) for k, v in result.items()}
    if isinstance(result, list | tuple):
        return [_plain(v) for v in result]
    return result


def _cell(value: object) -> str:
    if value is None:
        return "-"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, list | tuple):
        return ", ".join(_cell(v) for v in value) or "-"
    return str(value)
