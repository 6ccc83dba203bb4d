"""What this host's own links are, read from /sys without netlink.

`network create` checks a bridge name against the host's links; reading sysfs keeps
that command free of the netlink stack (pyroute2 costs a tenth of a second to import).
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

NET = Path("/sys/class/net")


@dataclass(frozen=True)
class LocalLink:
    name: str
    is_bridge: bool
    alias: str


def local_link(name: str, root: Path = NET) -> LocalLink | None:
    """The link called ``name`` in this process's namespace, or None."""
    if "/" in name or name in (".", ".."):
        return None
    path = root / name
    if not path.exists():
        return None
    try:
        alias = (path / "ifalias").read_text().strip()
    except OSError:
        alias = ""
    return LocalLink(name, (path / "bridge").is_dir(), alias)


def has_8021q(proc: Path = Path("/proc"), modules: Path = Path("/lib/modules")) -> bool:
    """Whether this kernel can make 802.1Q VLAN links: the 8021q module is loaded or
    built in (it then shows /proc/net/vlan), or is there to be loaded on first use."""
    if (proc / "net" / "vlan").is_dir():
        return True
    release = modules / os.uname().release
    for listing in ("modules.builtin", "modules.dep"):
        try:
            if "/8021q.ko" in (release / listing).read_text():
                return True
        except OSError:
            continue
    return False
