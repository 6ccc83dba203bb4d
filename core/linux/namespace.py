"""Which network namespace the host layer acts in, and how child processes enter it."""

from __future__ import annotations

import subprocess
from collections.abc import Sequence
from pathlib import Path

from core.errors import HostError, InvalidInput

NETNS_DIR = Path("/run/netns")


def check_netns(name: str | None) -> None:
    """Refuse a namespace that does not exist: the host layer never creates one."""
    if name is None:
        return
    if not name or "/" in name or name in (".", ".."):
        raise InvalidInput("--netns", f"{name!r} is not a namespace name")
    if not (NETNS_DIR / name).exists():
        # An unknown name is bad input, like an unknown project: exit status 2.
        raise InvalidInput(
            "--netns",
            f"network namespace {name!r} does not exist (create it with 'ip netns add {name}')",
        )


def state_key(name: str | None) -> str:
    """The state directory's sub-directory for one namespace (files must not mix)."""
    return "netns-" + name if name else "host"


def inside(netns: str | None, argv: Sequence[str]) -> list[str]:
    # nsenter rather than a setns() in a pre-exec hook: without the hook, Python can
    # spawn the child cheaply, which halves the cost of each nft call.
    if netns is None:
        return list(argv)
    return ["nsenter", f"--net={NETNS_DIR / netns}", *argv]


def run(
    netns: str | None, argv: Sequence[str], *, stdin: str | None = None, timeout: float = 30
) -> subprocess.CompletedProcess[str]:
    """Run a program inside ``netns``; a missing program is a HostError naming it."""
    try:
        return subprocess.run(
            inside(netns, argv),
            input=stdin,
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )
    except FileNotFoundError:
        program = "nsenter (util-linux)" if netns else argv[0]
        raise HostError(f"{program}: program not found; install it or set its path") from None
    except subprocess.TimeoutExpired:
        raise HostError(f"{argv[0]} did not finish within {timeout:.0f} s") from None


def spawn(netns: str | None, argv: Sequence[str], env: dict[str, str]) -> subprocess.Popen[bytes]:
    """Start a daemon inside ``netns`` (it forks away; the caller waits for the parent)."""
    try:
        return subprocess.Popen(
            inside(netns, argv),
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            env=env,
        )
    except FileNotFoundError:
        raise HostError(f"{argv[0]}: program not found; install it or set its path") from None
