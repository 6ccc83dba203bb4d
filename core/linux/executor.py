"""apply(plan): carry out a plan's operations, or undo what it started and say why.

Netlink work is sent in three pipelined rounds (removals, link creation, then
enslaving/marking/addresses, which need the new links' indexes); nftables changes
go as one atomic batch; DHCP files and processes come last, once the addresses
dnsmasq binds to exist.
"""

from __future__ import annotations

import errno
import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from core.errors import HostError
from core.linux import dnsmasq, netlink, nft, secgroups
from core.linux.netlink import Netlink, Request
from core.linux.observed import OWNER_ALIAS
from core.linux.operations import (
    AddAddress,
    AddNatElement,
    AddSetElement,
    ClaimLink,
    CreateBridge,
    CreateNatTable,
    CreateVlan,
    CreateVxlan,
    DeleteAddress,
    DeleteLink,
    DeleteNatElement,
    DeleteSetElement,
    EnableForwarding,
    Operation,
    Plan,
    ReleaseLeases,
    ReloadDnsmasq,
    SetMaster,
    SetUp,
    StartDnsmasq,
    StopDnsmasq,
    WriteHostsFile,
)
from core.linux.sysctl import enable_forwarding
from core.vpn.plan import StartVpn, StopVpn

CREATES = (CreateBridge, CreateVxlan, CreateVlan)
NAT_OPS = (CreateNatTable, AddSetElement, DeleteSetElement, AddNatElement, DeleteNatElement)


@dataclass
class Executor:
    netlink: Netlink
    nft: nft.Nft
    netns: str | None
    dhcp_dir: Path
    journal: Path
    nat_marker: Path
    dnsmasq_env: dict[str, str]

    def apply(self, plan: Plan) -> None:
        if plan.problems:
            raise HostError(plan.problems[0])
        ops = plan.operations
        if not ops:
            return
        undo: list[Request] = []
        try:
            # A VPN server sits on its project's bridge: it stops before links go and
            # starts once bridges exist and are up.
            for op in ops:
                if isinstance(op, StopVpn):
                    op.apply()
            self._stop_dnsmasq([op for op in ops if isinstance(op, StopDnsmasq)])
            self._removals(ops)
            self._index = None
            created = [op for op in ops if isinstance(op, CREATES)]
            if created:
                self.journal.parent.mkdir(parents=True, exist_ok=True)
                self.journal.write_text("".join(f"{op.name}\n" for op in created))
            self._create(created, undo)
            self._configure(ops, created, undo)
            if any(isinstance(op, EnableForwarding) for op in ops):
                enable_forwarding(self.netns)
            secgroups.prepare(ops, self.netns, self.nat_marker.parent)
            nat = [op for op in ops if isinstance(op, NAT_OPS)]
            self._nat(nat, secgroups.commands(ops))
            self._dhcp(ops)
            for op in ops:
                if isinstance(op, StartVpn):
                    op.apply()
            self.netlink.catch_up()
        except Exception:
            if undo:
                # Best effort: what this apply made goes again, so nothing is half made.
                self.netlink.run(list(reversed(undo)))
            raise
        finally:
            self.journal.unlink(missing_ok=True)

    # -- netlink ---------------------------------------------------------------------------

    def _indexes(self) -> dict[str, int]:
        if self._index is None:
            self._index = self.netlink.indexes()
        return self._index

    _index: dict[str, int] | None = None

    def _check(
        self, ops: Sequence[Operation], results: list[int], ignore: tuple[int, ...] = ()
    ) -> None:
        for op, code in zip(ops, results, strict=True):
            if code and code not in ignore:
                raise HostError(_explain(op, code))

    def _removals(self, ops: Sequence[Operation]) -> None:
        removals = [op for op in ops if isinstance(op, DeleteAddress | DeleteLink)]
        if not removals:
            return
        index = self._indexes()
        requests: list[Request] = []
        sent: list[Operation] = []
        for op in removals:
            if isinstance(op, DeleteAddress):
                if op.ifname in index:
                    requests.append(netlink.del_addr(index[op.ifname], op.address, op.prefixlen))
                    sent.append(op)
            else:
                if op.name in index:
                    requests.append(netlink.del_link(index[op.name]))
                    sent.append(op)
        gone = (errno.ENODEV, errno.EADDRNOTAVAIL, errno.ESRCH)
        self._check(sent, self.netlink.run(requests), gone)

    def _create(self, created: Sequence[Operation], undo: list[Request]) -> None:
        if not created:
            return
        index = self._indexes() if any(not isinstance(op, CreateBridge) for op in created) else {}
        requests = []
        for op in created:
            if isinstance(op, CreateBridge):
                requests.append(netlink.new_link(op.name, "bridge"))
            elif isinstance(op, CreateVxlan):
                data = netlink.vxlan_data(op.vni, op.group, index[op.parent], op.port)
                requests.append(netlink.new_link(op.name, "vxlan", data=data))
            elif isinstance(op, CreateVlan):
                requests.append(
                    netlink.new_link(
                        op.name, "vlan", link=index[op.parent], data=netlink.vlan_data(op.vlan_id)
                    )
                )
        results = self.netlink.run(requests)
        made = [op for op, code in zip(created, results, strict=True) if code == 0]
        if made:
            self._index = None  # the new links' indexes come from a fresh dump
            index = self._indexes()
            undo.extend(netlink.del_link(index[op.name]) for op in made if op.name in index)  # type: ignore[attr-defined]
        self._check(created, results)

    def _configure(
        self, ops: Sequence[Operation], created: Sequence[Operation], undo: list[Request]
    ) -> None:
        configures = [
            op for op in ops if isinstance(op, SetMaster | SetUp | AddAddress | ClaimLink)
        ]
        if not configures and not created:
            return
        index = self._indexes()
        requests: list[Request] = []
        sent: list[Operation] = []
        masters = {op.port: op.bridge for op in configures if isinstance(op, SetMaster)}
        for op in created:
            name: str = op.name  # type: ignore[attr-defined]
            master = masters.pop(name, None)
            requests.append(
                netlink.set_link(
                    index[name],
                    alias=OWNER_ALIAS,
                    master=index[master] if master else None,
                )
            )
            sent.append(op)
        for op in configures:
            if isinstance(op, SetMaster):
                if op.port in masters:
                    requests.append(netlink.set_link(index[op.port], master=index[op.bridge]))
                    sent.append(op)
            elif isinstance(op, SetUp):
                requests.append(netlink.set_link(index[op.name], up=True))
                sent.append(op)
            elif isinstance(op, ClaimLink):
                requests.append(netlink.set_link(index[op.name], alias=OWNER_ALIAS))
                sent.append(op)
            elif isinstance(op, AddAddress):
                requests.append(
                    netlink.new_addr(
                        index[op.ifname],
                        op.address,
                        op.prefixlen,
                        broadcast=op.broadcast,
                        label=op.label,
                    )
                )
                sent.append(op)
        results = self.netlink.run(requests)
        for op, code in zip(sent, results, strict=True):
            if code == 0 and isinstance(op, AddAddress):
                undo.append(netlink.del_addr(index[op.ifname], op.address, op.prefixlen))
        self._check(sent, results)

    # -- nftables -------------------------------------------------------------------------

    def _nat(self, ops: Sequence[Operation], filters: list[dict[str, Any]]) -> None:
        """NAT and security-group changes, as one atomic nft batch."""
        commands: list[dict[str, Any]] = []
        for op in ops:
            if isinstance(op, CreateNatTable):
                commands += nft.table_commands(op.replace)
            elif isinstance(op, AddSetElement | DeleteSetElement):
                verb = "add" if isinstance(op, AddSetElement) else "delete"
                value = nft.set_element(op.set_name, op.value)
                commands.append(nft.element_command(verb, op.set_name, [value]))
            elif isinstance(op, AddNatElement):
                commands.append(nft.element_command("add", nft.DNAT_MAP, [[op.floating, op.fixed]]))
                commands.append(nft.element_command("add", nft.SNAT_MAP, [[op.fixed, op.floating]]))
            elif isinstance(op, DeleteNatElement):
                commands += self._delete_pair(op)
        if any(isinstance(op, CreateNatTable) for op in ops):
            self.nat_marker.parent.mkdir(parents=True, exist_ok=True)
            self.nat_marker.touch()
        self.nft.run(commands + filters)

    def _delete_pair(self, op: DeleteNatElement) -> list[dict[str, Any]]:
        commands = []
        if op.in_dnat:
            commands.append(nft.element_command("delete", nft.DNAT_MAP, [op.floating]))
        if op.in_snat:
            commands.append(nft.element_command("delete", nft.SNAT_MAP, [op.fixed]))
        return commands

    # -- DHCP ------------------------------------------------------------------------------

    def _stop_dnsmasq(self, ops: Sequence[StopDnsmasq]) -> None:
        for op in ops:
            dnsmasq.stop(op.pid, dnsmasq.DhcpFiles(self.dhcp_dir, op.bridge))

    def _dhcp(self, ops: Sequence[Operation]) -> None:
        if any(isinstance(op, WriteHostsFile | StartDnsmasq) for op in ops):
            dnsmasq.check_reachable(self.dhcp_dir)
        if any(isinstance(op, StartDnsmasq) for op in ops):
            files = dnsmasq.DhcpFiles(self.dhcp_dir, "any")
            dnsmasq.write_atomically(files.script, dnsmasq.script_text(), mode=0o755)
        for op in ops:
            if isinstance(op, WriteHostsFile):
                files = dnsmasq.DhcpFiles(self.dhcp_dir, op.bridge)
                dnsmasq.write_atomically(files.opts, op.opts)
                dnsmasq.write_atomically(files.hosts, op.hosts)
            elif isinstance(op, StartDnsmasq):
                files = dnsmasq.DhcpFiles(self.dhcp_dir, op.bridge)
                if op.replaces is not None:
                    dnsmasq.stop(op.replaces, files, remove_files=False)
                env = dict(self.dnsmasq_env, NETWORK_ID=str(op.network_id))
                dnsmasq.start(self.netns, op.argv, env, files)
            elif isinstance(op, ReloadDnsmasq):
                dnsmasq.reload(op.pid)
            elif isinstance(op, ReleaseLeases):
                dnsmasq.release_leases(self.netns, op.program, op.bridge, op.leases)


def _explain(op: Operation, code: int) -> str:
    if isinstance(op, CreateVlan) and code == errno.EOPNOTSUPP:
        return (
            f"network {op.network}: this kernel has no 802.1Q VLAN support ({op.name} on "
            f"{op.parent}: {os.strerror(code)}); create the network with --segmentation vxlan, "
            'or set segmentation = "vxlan" in netcon.toml'
        )
    return f"{op.describe()}: {os.strerror(code)}"
