"""`netcon vpn list | run PROJECT | spawn | stop PROJECT | client-config PROJECT USER |
users PROJECT | revoke PROJECT USER`: project VPNs, each on its network's host."""

from __future__ import annotations

from core.cli.context import Context
from core.cli.output import col
from core.cli.spec import Group, arg, netns_arg

COLUMNS = (
    col("PROJECT"),
    col(
        "IP:PORT",
        "endpoint",
        value=lambda row: f"{row.public_address or '*'}:{row.public_port}",
    ),
    col("PRIVATE IP", "private_address"),
    col("NETWORK"),
    col("STATE"),
    col("OUT OF DATE", "out_of_date"),
)
USER_COLUMNS = (
    col("USER"),
    col("STATE"),
    col("MADE FOR", "made_for"),
    col("HOST"),
    col("SERIAL"),
)

group = Group("vpn", "project VPNs")


@group.command("list", "every project's VPN; up only if its server answers", netns_arg())
def list_vpns(ctx: Context) -> None:
    ctx.output.rows(ctx.service.list_vpns(ctx.args.netns), COLUMNS)


def _steps(ctx: Context, steps: list[str]) -> None:
    lines = steps or ["nothing to do: the VPN already runs as wanted"]
    ctx.output.lines(lines, {"steps": steps})


@group.command("run", "start the VPN of a project", arg("project", complete="project"), netns_arg())
def run_vpn(ctx: Context) -> None:
    _steps(ctx, ctx.service.run_vpn(ctx.args.project, ctx.args.netns))


@group.command("spawn", "start the VPN of every VLAN project", netns_arg())
def spawn_vpns(ctx: Context) -> None:
    _steps(ctx, ctx.service.spawn_vpns(ctx.args.netns))


@group.command("stop", "stop the VPN of a project", arg("project", complete="project"), netns_arg())
def stop_vpn(ctx: Context) -> None:
    _steps(ctx, ctx.service.stop_vpn(ctx.args.project, ctx.args.netns))


@group.command(
    "client-config",
    "issue a client certificate and print the user's .ovpn file",
    arg("project", complete="project"),
    arg("user"),
    netns_arg(),
)
def client_config(ctx: Context) -> None:
    text = ctx.service.vpn_client_config(ctx.args.project, ctx.args.user, ctx.args.netns)
    if ctx.json:
        ctx.output.document({"project": ctx.args.project, "user": ctx.args.user, "ovpn": text})
    else:
        ctx.out.write(text)


@group.command(
    "users",
    "the users of a project's VPN; out of date: made before the VPN moved, issue again",
    arg("project", complete="project"),
    netns_arg(),
)
def list_users(ctx: Context) -> None:
    ctx.output.rows(ctx.service.list_vpn_users(ctx.args.project, ctx.args.netns), USER_COLUMNS)


@group.command(
    "revoke",
    "revoke a user's certificate; the server refuses it",
    arg("project", complete="project"),
    arg("user"),
    netns_arg(),
)
def revoke_user(ctx: Context) -> None:
    a = ctx.args
    serial = ctx.service.revoke_vpn_user(a.project, a.user, a.netns)
    ctx.output.done(
        f"revoked {a.user} of project {a.project} (serial {serial:x})",
        {"project": a.project, "user": a.user, "serial": f"{serial:x}"},
    )
