"""The heartbeat lease: how long this host may go on answering for what it serves.

Peers declare a host dead once its heartbeat is older than ``host_down_time`` and may
then take its networks over. So that it never answers beside the host that took over,
whatever becomes of its agent (killed, OOM-killed, stopped, paused, cut off), what it
serves carries the same deadline in the kernel: gateway and floating addresses get a
lifetime (valid_lft and preferred_lft) that ends when the lease does, and only a
process that has just renewed the heartbeat renews it. When it ends the kernel deletes
the addresses itself: the host stops answering ARP for them, its dnsmasq finds no
address on its bridge and answers no DHCP, and nothing reaches its NAT.

A lease is a deadline on CLOCK_BOOTTIME, which keeps counting while a process is
stopped and while the machine sleeps (the peers' clocks do too), counted from before
the heartbeat was sent: the database saw the heartbeat at that moment or later, so the
lease never outlives what the peers believe.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass

from core.errors import HostError


def clock() -> float:
    return time.clock_gettime(time.CLOCK_BOOTTIME)


class LeaseLapsed(HostError):
    """The lease ended before the host was changed: it must stop serving, not serve."""

    def __init__(self, late: float) -> None:
        super().__init__(
            f"this host's heartbeat lease lapsed {late:.1f} s ago: it stops serving until "
            "it has renewed its heartbeat and read the database again"
        )


@dataclass(frozen=True)
class Lease:
    deadline: float  # CLOCK_BOOTTIME seconds

    @classmethod
    def from_heartbeat(cls, sent: float, seconds: float) -> Lease:
        """The lease a heartbeat sent at ``sent`` (clock()) gives, ``seconds`` long."""
        return cls(sent + seconds)

    def remaining(self) -> float:
        return self.deadline - clock()

    def lapsed(self) -> bool:
        return self.remaining() <= 0

    def lifetime(self) -> int:
        """Whole seconds for an address's lifetime, ending no later than the lease (the
        kernel takes at least one); raises LeaseLapsed when nothing is left."""
        left = self.remaining()
        if left <= 0:
            raise LeaseLapsed(-left)
        return max(1, math.floor(left))


def leased(fencing: str, dialect: str | None) -> bool:
    """Whether what this host serves carries its heartbeat lease. ``auto``: on a shared
    PostgreSQL database (another host may be declared dead and take over), not on SQLite
    (one host: nobody takes over, so nothing to fence against)."""
    if fencing == "auto":
        return dialect == "postgresql"
    return fencing == "lease"
