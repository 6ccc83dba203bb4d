"""apply(plan): carry out a plan's operations, or undo what it started and say why.

Every operation has a phase (operations.Phase) and an ``execute``; the executor runs
the phases in order, hands each operation of a phase the one Execution of this apply,
and sends the phase's batch at its end. Netlink work goes in pipelined rounds
(removals, link creation, then enslaving/marking/addresses, which need the new links'
indexes); nftables changes go as one atomic batch. If any of that fails, what this
apply made in the kernel (the links it created and the addresses it added, by index:
never another's) is taken back, so nothing is left half made.

Daemons come last, once the addresses they bind to exist: every dnsmasq is started
at once and then all are waited for. A daemon that fails does not take back the
kernel work, which is right as it is: the apply reports every daemon that failed, by
name, and the next apply starts them again. The metadata server is launched once the
dnsmasq processes serve (its imports would take the CPU their starts need) and waited
for after dnsmasq's follow-ups; should a phase between raise, it is stopped again.
"""

from __future__ import annotations

import errno
import logging
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from core.errors import HeldBack, HostError
from core.linux import (
    closedports,
    conntrack,
    dnsmasq,
    garp,
    netlink,
    nft,
    nfttable,
    processes,
    sysctl,
)
from core.linux.execution import Batch, Execution
from core.linux.lease import Lease, LeaseLapsed
from core.linux.metadata import server as metadata_server
from core.linux.metadata import table as metadata_table
from core.linux.namespace import entered
from core.linux.netlink import Netlink
from core.linux.operations import LAST_KERNEL_PHASE, Operation, Phase, Plan
from core.linux.secgroups.render import commands as filter_batch

log = logging.getLogger("netcon.host")


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
            raise HeldBack(
                f"{plan.problems[0]} (that network held back; everything else applied)"
                if len(plan.problems) == 1
                else f"{'; '.join(plan.problems)} (those networks held back; "
                "everything else applied)",
                plan.problems,
                len(plan.operations),
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
            names=set(),
        )
        # One pass over the plan (thousands of filter operations on a first apply): each
        # phase then sees only its own operations.
        phases: dict[Phase, list[Operation]] = {}
        needs_lease = False
        for op in ops:
            phases.setdefault(op.phase, []).append(op)
            run.names.update(op.links())
            needs_lease = needs_lease or op.needs_lease()
        if needs_lease:
            # Before anything changes: a host whose lease lapsed (its process was paused
            # mid-apply, say) must not bring up what another host may serve by now.
            run.lifetime()
        try:
            for phase in Phase:
                if phase <= LAST_KERNEL_PHASE:
                    _run_phase(run, phase, phases.get(phase, []))
        except Exception:
            if run.undo:
                # Best effort: what this apply made goes again, so nothing is half made.
                self.netlink.run(list(reversed(run.undo)))
            raise
        finally:
            self.journal.unlink(missing_ok=True)
        try:
            for phase in Phase:
                if phase > LAST_KERNEL_PHASE:
                    _run_phase(run, phase, phases.get(phase, []))
        except BaseException:
            # A metadata server launched and not yet waited for would serve an apply
            # that failed: it goes (the next apply starts it again).
            for starting in run.launched:
                starting.abandon()
            raise
        self.netlink.catch_up()
        if run.failures:
            raise HostError("; ".join(run.failures))


def _run_phase(run: Execution, phase: Phase, ops: list[Operation]) -> None:
    for op in ops:
        op.execute(run)
    send = SENDS.get(phase)
    if send is not None:
        send(run)


# -- the end of each phase: what it gathered, sent ---------------------------------------


def _stop_servers(run: Execution) -> None:
    """Metadata servers stop first: a new one needs the port."""
    processes.terminate(run.stopped_servers)


def _stop_dnsmasq(run: Execution) -> None:
    dnsmasq.stop_processes(run.stopped_dnsmasq)
    for bridge in run.dhcp_gone:
        dnsmasq.delete_files(dnsmasq.DhcpFiles(run.dhcp_dir, bridge))


def _remove(run: Execution) -> None:
    if run.removals.requests:
        gone = (errno.ENODEV, errno.EADDRNOTAVAIL, errno.ESRCH)
        run.removals.check(run.netlink.run(run.removals.requests), gone)
    run.forget_index()


def _create(run: Execution) -> None:
    if not run.created:
        return
    # Named before they exist: an interrupted apply's links are known as netcon's.
    run.journal.parent.mkdir(parents=True, exist_ok=True)
    run.journal.write_text("".join(f"{name}\n" for name in run.created))
    results = run.netlink.run(run.creations.requests)
    made = [name for name, code in zip(run.created, results, strict=True) if code == 0]
    if made:
        run.forget_index()  # the new links' indexes come from a fresh dump
        index = run.index()
        run.undo.extend(netlink.del_link(index[name]) for name in made if name in index)
    run.creations.check(results)


def _ignore_adverts(run: Execution) -> None:
    sysctl.ignore_adverts(run.netns, run.ignoring_adverts)


def _configure(run: Execution) -> None:
    if not run.configure.requests and not run.created:
        return
    index = run.index()
    # First in the round: the links this apply created, marked as netcon's and
    # enslaved to their bridge in the same request.
    batch = Batch()
    for op, name in zip(run.creations.sent, run.created, strict=True):
        batch.add(op, run.claim(name, run.masters.get(name)))
    batch.sent += run.configure.sent
    batch.requests += run.configure.requests
    results = run.netlink.run(batch.requests)
    for op, code in zip(batch.sent, results, strict=True):
        if code == 0:
            run.undo += op.undo(index)
    if run.leased and run.lease is not None and run.lease.lapsed():
        # Stopped between counting the lifetime and sending it: what was given would
        # outlive the lease, so it goes now (it was gone or going anyway).
        run.netlink.run(run.leased)
        raise LeaseLapsed(-run.lease.remaining())
    batch.check(results)


def _nft(run: Execution) -> None:
    """NAT and security-group changes, as one atomic nft batch."""
    filters = filter_batch(run.filters)
    if run.renewed_ports:
        filters += closedports.renewal(tuple(run.renewed_ports), run.port_lifetime())
    run.nft.run(run.nat_commands + filters)
    ports = tuple(run.leased_ports)
    if ports and run.lease is not None and run.lease.lapsed():
        # Paused between counting the timeout and sending it: the elements would
        # outlive the lease, so they go now.
        run.nft.run(closedports.removal(ports))
        raise LeaseLapsed(-run.lease.remaining())


def _hairpin_uplinks(run: Execution) -> None:
    """Uplinks into hairpin mode once the nft batch that lets only NATed frames back
    out of them is in the kernel (see SetUplinkHairpin)."""
    if run.uplinks.requests:
        run.uplinks.check(run.netlink.run(run.uplinks.requests))


def _forget_old_mappings(run: Execution) -> None:
    """A NAT mapping holds for a connection's life: once a floating IP's pair is gone
    (disassociated, or moved to another instance), its tracked connections go too,
    or they keep flowing to the old instance."""
    if not run.forgotten:
        return
    try:
        with entered(run.netns):
            conntrack.forget(run.forgotten)
    except OSError as exc:
        log.warning("connections through %s not forgotten: %s", ", ".join(run.forgotten), exc)


def _ipv6_side(run: Execution) -> None:
    """The multi-host segment filter, in one nft batch."""
    # The host's state directory holds the NAT marker, and the tables' markers.
    nfttable.apply(
        run.ipv6_side, run.nft.binary, run.netns, run.nat_marker.parent, "IPv6 segment filter"
    )


def _host_input(run: Execution) -> None:
    """The host input filter, in one nft batch."""
    nfttable.apply(
        run.host_input, run.nft.binary, run.netns, run.nat_marker.parent, "host input filter"
    )


def _announce(run: Execution) -> None:
    """Gratuitous ARP for every address this apply brought here (a floating IP, a
    gateway after a failover), so neighbours stop sending to its old home now rather
    than when their ARP entry expires. Best effort: the address works without it."""
    if not run.announced:
        return
    with entered(run.netns):
        for ifname, addresses in run.announced.items():
            try:
                garp.announce(ifname, addresses)
            except OSError as exc:
                log.warning("no gratuitous ARP for %s on %s: %s", addresses, ifname, exc)


def _start_dnsmasq(run: Execution) -> None:
    """Every dnsmasq's files written, then every dnsmasq started at once and all
    waited for."""
    run.write_dhcp_files()
    dnsmasq.stop_processes(run.replaced)
    failed = dnsmasq.start_all(run.netns, run.dnsmasq_starts)
    if failed:
        run.failures.append(dnsmasq.failure_message(failed))


def _metadata_table(run: Execution) -> None:
    """Both families' DNAT tables in one nft batch, and the IPv6 metadata address."""
    metadata_table.apply(
        run.metadata_table, run.netlink, run.nft.binary, run.netns, run.nat_marker.parent
    )


def _wait_for_metadata(run: Execution) -> None:
    """The metadata servers launched once dnsmasq serves, waited for until they
    listen; one that does not is reported (the kernel work stays)."""
    launched, run.launched = run.launched, []
    run.failures += metadata_server.wait_all(launched, run.netns)


SENDS: dict[Phase, Callable[[Execution], None]] = {
    Phase.STOP_METADATA: _stop_servers,
    Phase.STOP_DNSMASQ: _stop_dnsmasq,
    Phase.REMOVE_LINKS: _remove,
    Phase.CREATE_LINKS: _create,
    Phase.IGNORE_ADVERTS: _ignore_adverts,
    Phase.CONFIGURE_LINKS: _configure,
    Phase.NFT: _nft,
    Phase.HAIRPIN_UPLINKS: _hairpin_uplinks,
    Phase.FORGET_MAPPINGS: _forget_old_mappings,
    Phase.IPV6_SIDE: _ipv6_side,
    Phase.ANNOUNCE: _announce,
    Phase.METADATA_TABLE: _metadata_table,
    Phase.HOST_INPUT: _host_input,
    Phase.DHCP: _start_dnsmasq,
    Phase.WAIT_METADATA: _wait_for_metadata,
}
