"""apply(plan): carry out a plan's operations, or undo what it started and say why.

Every operation has a phase (operations.Phase) and an ``execute``; the executor runs
the phases in order, hands each operation of a phase the one Execution of this apply,
and flushes the phase's batch at its end. Netlink work is sent in pipelined rounds
(removals, link creation, then enslaving/marking/addresses, which need the new links'
indexes); nftables changes go as one atomic batch. If any of that fails, what this
apply made in the kernel (the links it created and the addresses it added, by index:
never another's) is taken back, so nothing is left half made.

Daemons come last, once the addresses they bind to exist: every dnsmasq is started
at once and then all are waited for. A daemon that fails does not take back the
kernel work, which is right as it is: the apply reports every daemon that failed, by
name, and the next apply starts them again.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from core.errors import HostError
from core.linux import nft
from core.linux.execution import Execution, needs_lease
from core.linux.lease import Lease
from core.linux.netlink import Netlink
from core.linux.operations import LAST_KERNEL_PHASE, Operation, Phase, Plan


@dataclass
class Executor:
    netlink: Netlink
    nft: nft.Nft
    netns: str | None
    dhcp_dir: Path
    journal: Path
    nat_marker: Path
    dnsmasq_env: dict[str, str]
    # Where the VPN servers' files are (their per-namespace part is netns's).
    state_dir: str
    # Until when this host may serve: what leased addresses' lifetimes end with.
    lease: Lease | None = None

    def apply(self, plan: Plan) -> None:
        if plan.problems and not plan.partial:
            raise HostError(plan.problems[0])
        self._carry_out(plan.operations)
        if plan.problems:
            raise HostError(
                f"{plan.problems[0]} (that network held back; everything else applied)"
                if len(plan.problems) == 1
                else f"{'; '.join(plan.problems)} (those networks held back; "
                "everything else applied)"
            )

    def _carry_out(self, ops: tuple[Operation, ...]) -> None:
        if not ops:
            return
        run = Execution(
            self.netlink,
            self.nft,
            self.netns,
            self.dhcp_dir,
            self.journal,
            self.nat_marker,
            self.dnsmasq_env,
            self.state_dir,
            self.lease,
            names={name for op in ops for name in op.links()},
        )
        if needs_lease(ops):
            # Before anything changes: a host whose lease lapsed (its process was paused
            # mid-apply, say) must not bring up what another host may serve by now.
            run.lifetime()
        phases: dict[Phase, list[Operation]] = {}
        for op in ops:
            phases.setdefault(op.phase, []).append(op)
        try:
            for phase in Phase:
                if phase <= LAST_KERNEL_PHASE:
                    _run_phase(run, phase, phases.get(phase, ()))
        except Exception:
            if run.undo:
                # Best effort: what this apply made goes again, so nothing is half made.
                self.netlink.run(list(reversed(run.undo)))
            raise
        finally:
            self.journal.unlink(missing_ok=True)
        for phase in Phase:
            if phase > LAST_KERNEL_PHASE:
                _run_phase(run, phase, phases.get(phase, ()))
        self.netlink.catch_up()
        if run.failures:
            raise HostError("; ".join(run.failures))


def _run_phase(run: Execution, phase: Phase, ops: list[Operation] | tuple[()]) -> None:
    for op in ops:
        op.execute(run)
    run.flush(phase)
