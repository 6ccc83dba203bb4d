"""`netcon key add|list|delete`: SSH public keys of a project, for its instances."""

from __future__ import annotations

import sys

from core.cli.context import Context
from core.cli.output import col
from core.cli.spec import Group, arg
from core.errors import InvalidInput

COLUMNS = (col("PROJECT"), col("NAME"), col("FINGERPRINT"), col("INSTANCES"))
DETAIL = (*COLUMNS, col("PUBLIC KEY"), col("CREATED AT"))

group = Group("key", "SSH public keys a project's instances are given")


@group.command(
    "add",
    "add a public key to a project (read from FILE, or standard input with -)",
    arg("--project", required=True, complete="project"),
    arg("name"),
    arg("file", metavar="FILE", help="an OpenSSH public key file, like ~/.ssh/id_ed25519.pub"),
)
def add_key(ctx: Context) -> None:
    a = ctx.args
    try:
        if a.file == "-":
            text = sys.stdin.read(16384)
        else:
            with open(a.file, encoding="utf-8") as file:
                text = file.read(16384)
    except (OSError, UnicodeDecodeError) as exc:
        raise InvalidInput("public_key", f"cannot read {a.file[:80]} ({exc})") from None
    ctx.output.one(ctx.service.add_key(a.project, a.name, text), DETAIL)


@group.command("list", "list keys", arg("--project", complete="project"))
def list_keys(ctx: Context) -> None:
    ctx.output.rows(ctx.service.list_keys(project=ctx.args.project), COLUMNS)


@group.command(
    "delete",
    "delete a key no instance uses",
    arg("--project", required=True, complete="project"),
    arg("name", complete="key"),
)
def delete_key(ctx: Context) -> None:
    gone = ctx.service.delete_key(ctx.args.project, ctx.args.name)
    ctx.output.outcome(gone, DETAIL, f"deleted key {gone.name} of {gone.project}")
