"""What the hosts have not applied yet, per host.

Today the one source is this host's own plan (:meth:`NetconAPI.host_plan_view`): what
`host apply` would still change here. When agents record what each host applied, a
per-host source replaces :func:`read_pending` and nothing else changes.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from core.errors import NetconError

if TYPE_CHECKING:
    from core.service.api import NetconAPI
    from core.views import PlanView


@dataclass(frozen=True)
class Pending:
    """Each known host's outstanding plan; ``errors`` for hosts that could not be read."""

    plans: dict[str, PlanView] = field(default_factory=dict)
    errors: dict[str, str] = field(default_factory=dict)
    known: bool = True  # False until read, and when reading is turned off

    def count(self, host: str) -> int | None:
        plan = self.plans.get(host)
        return None if plan is None else len(plan.operations)

    def touching(self, host: str | None, subjects: Iterable[str]) -> list[str]:
        """The operations still owed by ``host`` that act on any of ``subjects``."""
        plan = self.plans.get(host or "")
        wanted = set(subjects)
        if plan is None or not wanted:
            return []
        return [op.text for op in plan.operations if wanted.intersection(op.subjects)]

    def marks(self, host: str | None, subjects: Iterable[str]) -> bool:
        return bool(self.touching(host, subjects))


UNKNOWN = Pending(known=False)

PendingSource = Callable[["NetconAPI"], Pending]


def read_pending(api: NetconAPI) -> Pending:
    """This host's plan; it only reads netlink, nftables and dnsmasq's files."""
    host = api.settings.host
    try:
        plan = api.host_plan_view()
    except NetconError as exc:
        return Pending(errors={host: exc.message})
    except OSError as exc:
        return Pending(errors={host: str(exc)})
    return Pending(plans={host: plan})
