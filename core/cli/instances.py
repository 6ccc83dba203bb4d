"""`netcon instance launch|terminate|list|show`."""

from __future__ import annotations

from typing import Any

from core.cli.context import Context
from core.cli.output import col
from core.cli.spec import Group, arg
from core.errors import InvalidInput

MAX_USER_DATA = 64 * 1024  # as core.validate's; read no more than one byte past it


def _addresses(instance: Any) -> str:
    parts = [a.address + (f" ({a.floating})" if a.floating else "") for a in instance.addresses]
    return ", ".join(parts) or "-"


COLUMNS = (
    col("NAME"),
    col("PROJECT"),
    col("HOST"),
    col("ADDRESSES", text=_addresses),
    col("SECURITY GROUPS"),
)
DETAIL = (
    *COLUMNS,
    col("IPV6", value=lambda i: [a.address_v6 for a in i.addresses if a.address_v6]),
    col("MACS", value=lambda i: [a.mac for a in i.addresses]),
    col("CREATED AT"),
)

group = Group("instance", "launch, terminate, list and show instances")


@group.command(
    "launch",
    "launch an instance (allocates its address)",
    arg("--project", required=True, complete="project"),
    arg("name"),
    arg(
        "--security-group",
        action="append",
        default=[],
        dest="security_groups",
        metavar="GROUP",
        complete="secgroup",
    ),
    arg("--host", complete="host", help="the compute host it runs on (default: its network's)"),
    arg("--user-data", metavar="FILE", help="what cloud-init reads (text or gzip, ≤ 64 KiB)"),
    arg("--key", complete="key", help="a key of the project, handed out by the metadata service"),
)
def launch_instance(ctx: Context) -> None:
    a = ctx.args
    user_data = _read_user_data(a.user_data) if a.user_data is not None else None
    launched = ctx.service.launch_instance(
        a.project, a.name, a.security_groups, host=a.host, user_data=user_data, key=a.key
    )
    ctx.output.one(launched, DETAIL)


def _read_user_data(path: str) -> bytes:
    try:
        with open(path, "rb") as file:
            # One byte more than allowed is enough to refuse a file that is too big.
            return file.read(MAX_USER_DATA + 1)
    except OSError as exc:
        raise InvalidInput("user_data", f"cannot read {path[:80]} ({exc.strerror})") from None


@group.command("terminate", "terminate an instance", arg("name", complete="instance"))
def terminate_instance(ctx: Context) -> None:
    gone = ctx.service.terminate_instance(ctx.args.name)
    ctx.output.outcome(gone, DETAIL, f"terminated {gone.name}")


@group.command("list", "list instances", arg("--project", complete="project"))
def list_instances(ctx: Context) -> None:
    ctx.output.rows(ctx.service.list_instances(project=ctx.args.project), COLUMNS)


@group.command("show", "show an instance and its injected config", arg("name", complete="instance"))
def show_instance(ctx: Context) -> None:
    detail = ctx.service.get_instance(ctx.args.name)
    injected = detail.injected
    if ctx.json:
        extra = col("INJECTED", value=lambda _: injected)
        ctx.output.one(detail.instance, (*DETAIL, extra))
        return
    ctx.output.one(detail.instance, DETAIL)
    if injected is not None:
        ctx.out.write("\n# /etc/network/interfaces\n" + injected.interfaces)
        ctx.out.write("\n# cloud-init network-config (version 2)\n" + injected.cloud_init)
