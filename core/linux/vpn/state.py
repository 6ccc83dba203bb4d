"""The state `vpn list` shows for one VLAN network, probed on this host.

Kept free of the service so that the service itself can call it (``_vpn_state``).
"""

from __future__ import annotations

from typing import Protocol

from core.config import Settings
from core.linux.vpn.server import ServerFiles


class VpnNetwork(Protocol):
    """What the state needs of a VLAN network (a row of the networks table has it)."""

    @property
    def project_name(self) -> str | None: ...
    @property
    def host(self) -> str | None: ...
    @property
    def vpn_enabled(self) -> bool: ...


def vpn_state(
    settings: Settings, network: VpnNetwork, netns: str | None = None, *, owed: bool = False
) -> str:
    """up: the server answers on its management socket; unresponsive: its process is
    alive but silent; down: wanted but not running; off: not wanted, not running;
    "on HOST": wanted on another network host, which runs it (not probed from here);
    "pending on HOST": that host has yet to apply a change to its network (``owed``);
    "-": no project."""
    if network.project_name is None:
        return "-"
    if network.host not in (None, settings.host):
        if owed:
            return f"pending on {network.host}"
        return f"on {network.host}" if network.vpn_enabled else "off"
    state = ServerFiles(settings.state_dir, network.project_name, netns).state()
    if state == "down" and not network.vpn_enabled:
        return "off"
    return state
