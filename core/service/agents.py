"""Several network hosts on one database: what each still has to apply, what it applied,
and moving a dead host's networks to live ones."""

from __future__ import annotations

import functools
import json
from collections.abc import Collection, Sequence
from dataclasses import dataclass, field
from datetime import timedelta
from typing import TYPE_CHECKING, Any

from sqlalchemy import (
    Connection,
    Integer,
    Select,
    Update,
    and_,
    bindparam,
    case,
    delete,
    func,
    or_,
    select,
    update,
)

import core.service.hostgateways as hostgateways
from core import validate
from core.errors import Conflict, NotFound
from core.secrules import rule_key
from core.service.owed import Owed, OwedChange
from core.service.part import Part
from core.store.schema import (
    audit_events,
    fixed_ips,
    floating_ips,
    host_changes,
    hosts,
    instances,
    networks,
    projects,
    security_groups,
)

# The views are imported where they are made: `host apply` uses this part for what a
# host owes and what it applied, which are no views.
if TYPE_CHECKING:
    from core.linux.host import HostLayer
    from core.linux.lease import Lease
    from core.views import ChangeStatusView, EvacuationView, PendingOverview, PendingView

# The audit action of a rule added (core.service.secgroups): its event names the rule.
RULE_ADDED = "secgroup.rule.add"

# Evacuations of down hosts are made by one agent at a time.
EVACUATION_LOCK = 0x6E63657661


@dataclass
class _Moved:
    """Instances an evacuation moved (name -> new host) and their multi-host networks."""

    hosts: dict[str, str] = field(default_factory=dict)
    network_ids: set[int] = field(default_factory=set)


@functools.cache
def _multi_host_instances() -> Select[Any]:
    """The instances with an address on a multi-host network: the host they run on
    serves them."""
    return (
        select(fixed_ips.c.instance_id)
        .join(networks, fixed_ips.c.network_id == networks.c.id)
        .where(networks.c.multi_host.is_(True), fixed_ips.c.instance_id.is_not(None))
    )


@functools.cache
def _pending_query() -> Select[Any]:
    """What a host still owes, asked on every wake-up of every agent: one statement (one
    round trip on PostgreSQL), built once. Its one row without a change says what was
    applied and the latest change."""
    numbers = select(
        select(hosts.c.applied_change)
        .where(hosts.c.name == bindparam("host"))
        .scalar_subquery()
        .label("applied"),
        select(func.max(host_changes.c.change_id)).scalar_subquery().label("latest"),
    ).subquery("numbers")
    owed = and_(
        host_changes.c.host == bindparam("host"),
        host_changes.c.change_id > func.coalesce(numbers.c.applied, 0),
    )
    return (
        select(
            numbers.c.applied,
            numbers.c.latest,
            host_changes.c.change_id,
            host_changes.c.networks,
            host_changes.c.floating,
            host_changes.c.security,
            host_changes.c.groups,
            host_changes.c.ports,
            host_changes.c.vpns,
        )
        .select_from(numbers.outerjoin(host_changes, owed))
        .order_by(host_changes.c.change_id)
    )


@functools.cache
def _owed_everywhere() -> Select[Any]:
    """Every change some host has not applied yet, by host and number: the rows
    hostlist.PENDING counts."""
    return (
        select(
            host_changes.c.host,
            host_changes.c.change_id,
            host_changes.c.networks,
            host_changes.c.floating,
            host_changes.c.security,
            host_changes.c.vpns,
            host_changes.c.groups,
            host_changes.c.ports,
        )
        .select_from(host_changes.outerjoin(hosts, hosts.c.name == host_changes.c.host))
        .where(
            or_(
                hosts.c.applied_change.is_(None),
                host_changes.c.change_id > hosts.c.applied_change,
            )
        )
        .order_by(host_changes.c.host, host_changes.c.change_id)
    )


@functools.cache
def _applied_in_one() -> Update:
    """A host's applies recorded (never backwards) and the changes it applied forgotten,
    in one statement: a data-modifying WITH runs whether or not the UPDATE reads it."""
    change = bindparam("change", type_=Integer)
    forgotten = (
        delete(host_changes)
        .where(host_changes.c.host == bindparam("host"), host_changes.c.change_id <= change)
        .cte("forgotten")
    )
    return (
        update(hosts)
        .where(hosts.c.name == bindparam("host"))
        .values(
            applied_at=bindparam("now", type_=hosts.c.applied_at.type),
            last_error=None,
            error_at=None,
            applied_change=case(
                (
                    or_(hosts.c.applied_change.is_(None), hosts.c.applied_change < change),
                    change,
                ),
                else_=hosts.c.applied_change,
            ),
        )
        .add_cte(forgotten)
    )


@dataclass
class _Gathered:
    """What one host owes, gathered change by change (pending_overview)."""

    changes: list[int] = field(default_factory=list)
    bridges: set[str] = field(default_factory=set)
    floating: set[str] = field(default_factory=set)
    groups: set[str] = field(default_factory=set)
    rules: set[int] = field(default_factory=set)
    touched: list[tuple[int, tuple[str, ...]]] = field(default_factory=list)
    whole_host: bool = False


def _group_labels(connection: Connection, group_ids: set[int]) -> dict[int, str]:
    """Security groups by id, as "project/name" (how rows and plans name them); a group
    deleted since is left out: no row shows it."""
    return {
        int(number): f"{project}/{name}"
        for number, project, name in connection.execute(
            select(security_groups.c.id, projects.c.name, security_groups.c.name)
            .join(projects, projects.c.id == security_groups.c.project_id)
            .where(security_groups.c.id.in_(sorted(group_ids)))
        )
    }


def _rules_added(connection: Connection, changes: set[int]) -> dict[int, int]:
    """Of ``changes``, those that added a security-group rule, and the rule each added:
    the change's own audit event says which (a host's record names only the group)."""
    found: dict[int, int] = {}
    for change, after in connection.execute(
        select(audit_events.c.id, audit_events.c.after).where(
            audit_events.c.id.in_(sorted(changes)),
            audit_events.c.action == RULE_ADDED,
        )
    ):
        rule = json.loads(after or "{}").get("id")
        if isinstance(rule, int):
            found[int(change)] = rule
    return found


class AgentsPart(Part):
    def heartbeat(self, host: str | None = None) -> None:
        """Mark a network host alive; the host layer calls this on every apply. This
        host also says where VPN clients reach it (its vpn_ip), so that a VPN answers
        at the address of whichever host serves its network.

        Every agent does this every heartbeat_interval, so it is one statement (on
        PostgreSQL one round trip, no BEGIN or COMMIT): its own row, made if missing,
        and nothing that wakes another host."""
        name = validate.host_name("host", host if host is not None else self.settings.host)
        values: dict[str, Any] = {"name": name, "now": self.clock()}
        own = name == self.settings.host
        if own:
            values["vpn_ip"] = self.settings.vpn_ip
        with self.db.single(write=True) as connection:
            connection.execute(_heartbeat_statement(self.db.dialect, with_vpn_ip=own), values)

    def announce_vpn_ip(self) -> None:
        """This host's row, with the address its VPN clients reach it at, and its
        heartbeat left as it was: what an apply outside an agent says of the host (an
        apply is no heartbeat; only a running agent says the host is alive)."""
        name = self.settings.host
        with self.db.write() as connection:
            changed = connection.execute(
                update(hosts).where(hosts.c.name == name).values(vpn_ip=self.settings.vpn_ip)
            ).rowcount
            if not changed:
                self._ensure_host(connection, name)

    def serving_lease(self, layer: HostLayer) -> Lease | None:
        """The lease an apply outside an agent gives what it brings up, when addresses
        carry one here (fencing): one heartbeat's worth, from a heartbeat made now. An
        admin's apply marks the host alive, and what it serves lasts exactly as long as
        the peers believe that; `netcon agent` renews it from then on."""
        from core.linux import lease

        if not layer.leased:
            return None
        sent = lease.clock()
        self.heartbeat()
        return lease.Lease.from_heartbeat(sent, self.settings.host_down_time)

    def owed(self, host: str) -> Owed:
        """The changes ``host`` has not applied yet, each with the scope it asks for."""
        name = validate.host_name("host", host)
        with self.db.single() as connection:
            found = connection.execute(_pending_query(), {"host": name}).all()
        return Owed(
            host=name,
            applied=found[0].applied,
            latest=found[0].latest,
            changes=tuple(OwedChange.from_row(row) for row in found if row.change_id),
        )

    def pending_for(self, host: str) -> PendingView:
        """The changes ``host`` has not applied yet, and what they touched."""
        from core.views import PendingView

        owed = self.owed(host)
        scopes = [change.scope for change in owed.changes if change.scope is not None]
        return PendingView(
            host=owed.host,
            applied=owed.applied,
            changes=owed.numbers,
            network_ids=tuple(sorted({n for scope in scopes for n in scope.network_ids})),
            floating=tuple(sorted({a for scope in scopes for a in scope.floating})),
            latest=owed.latest,
            whole_host=owed.whole_host,
        )

    def pending_overview(self) -> PendingOverview:
        """Every host and what each owes, in one read: the listing `host list` prints
        (its PENDING counts changes) and, for the hosts that owe any, those changes and
        the bridges and floating addresses they touched. Three statements however many
        hosts there are, so that the console's marks cost the same with 1,000 hosts."""
        from core.store.hostlist import read_hosts
        from core.views import OwedView, PendingOverview

        with self.db.read() as connection:
            listed = read_hosts(
                lambda sql: connection.exec_driver_sql(sql).all(),
                self.clock(),
                self.settings.host_down_time,
            )
            rows = connection.execute(_owed_everywhere()).all()
            ids: set[int] = set()
            group_ids: set[int] = set()
            decoded = []
            for row in rows:
                host, change, networks_json, floating_json, security, vpns_json = row[:6]
                groups_json, ports_json = row[6:]
                named_networks = [int(n) for n in json.loads(networks_json)]
                named_floating = [str(a) for a in json.loads(floating_json)]
                named_groups = [int(g) for g in json.loads(groups_json)]
                # An instance's port by its MAC, as the instance's row names it.
                named_ports = [str(mac) for mac, _address in json.loads(ports_json)]
                # A change that names nothing narrower asks for the whole host (as Owed).
                narrower = bool(
                    named_networks or named_floating or security or json.loads(vpns_json)
                )
                ids.update(named_networks)
                group_ids.update(named_groups)
                decoded.append(
                    (str(host), int(change), named_networks, named_floating, named_groups,
                     named_ports, not narrower)
                )  # fmt: skip
            bridges: dict[int, str] = {}
            if ids:
                bridges = {
                    int(number): str(bridge)
                    for number, bridge in connection.execute(
                        select(networks.c.id, networks.c.bridge).where(
                            networks.c.id.in_(sorted(ids)), networks.c.bridge.is_not(None)
                        )
                    )
                }
            labels = _group_labels(connection, group_ids) if group_ids else {}
            added = (
                _rules_added(connection, {row[1] for row in decoded}) if group_ids else {}
            )
        gathered: dict[str, _Gathered] = {}
        for host, change, named_networks, named_floating, named_groups, ports, whole in decoded:
            into = gathered.setdefault(host, _Gathered())
            into.changes.append(change)
            touched_bridges = [bridges[n] for n in named_networks if n in bridges]
            touched_groups = [labels[g] for g in named_groups if g in labels]
            into.bridges.update(touched_bridges)
            into.floating.update(named_floating)
            into.groups.update(touched_groups)
            names = touched_bridges + named_floating + touched_groups + ports
            if change in added:
                into.rules.add(added[change])
                names.append(rule_key(added[change]))
            into.touched.append((change, tuple(names)))
            into.whole_host = into.whole_host or whole
        owed = {
            host: OwedView(
                host, tuple(into.changes), tuple(sorted(into.bridges)),
                tuple(sorted(into.floating)), into.whole_host, tuple(sorted(into.groups)),
                tuple(sorted(into.rules)), tuple(into.touched),
            )
            for host, into in gathered.items()
        }  # fmt: skip
        return PendingOverview(tuple(listed), owed)

    def record_applied(
        self,
        host: str,
        change: int | None,
        error: str | None = None,
        *,
        forgotten: Collection[int] = (),
    ) -> None:
        """What ``host``'s agent did: applied everything up to ``change``, or failed with
        ``error`` (the changes stay pending). Applied rows are forgotten, and so are the
        changes ``forgotten`` names: those an apply that held something back (``error``
        says what) carried out all the same."""
        name = validate.host_name("host", host)
        now = self.clock()
        if (
            error is None
            and change is not None
            and not forgotten
            and self.db.dialect == "postgresql"
        ):
            # Every apply of every agent ends here: one statement, built once.
            with self.db.single(write=True) as connection:
                applied = {"host": name, "change": change, "now": now}
                if connection.execute(_applied_in_one(), applied).rowcount:
                    return
            # No row for the host yet: made below.
        values: dict[str, Any]
        if error is not None:
            values = {"last_error": " ".join(error.split())[:1000], "error_at": now}
            if forgotten:
                values["applied_at"] = now  # it applied something, if not everything
        else:
            values = {"applied_at": now, "last_error": None, "error_at": None}
            if change is not None:
                # Never backwards: a slower, older apply may record after a newer one.
                values["applied_change"] = case(
                    (
                        or_(hosts.c.applied_change.is_(None), hosts.c.applied_change < change),
                        change,
                    ),
                    else_=hosts.c.applied_change,
                )
        with self.db.write() as connection:
            if error is None and change is not None:
                connection.execute(
                    delete(host_changes).where(
                        host_changes.c.host == name, host_changes.c.change_id <= change
                    )
                )
            if forgotten:
                connection.execute(
                    delete(host_changes).where(
                        host_changes.c.host == name,
                        host_changes.c.change_id.in_(sorted(forgotten)),
                    )
                )
            statement = update(hosts).where(hosts.c.name == name).values(**values)
            if connection.execute(statement).rowcount == 0:
                self._ensure_host(connection, name)
                connection.execute(statement)

    def change_status(self, change: int) -> ChangeStatusView:
        """Which hosts have applied change ``change`` and which still owe it."""
        from core.views import ChangeStatusView

        with self.db.read() as connection:
            owing = set(
                connection.execute(
                    select(host_changes.c.host).where(host_changes.c.change_id == change)
                ).scalars()
            )
            pending = tuple(
                sorted(
                    host
                    for host, applied in connection.execute(
                        select(hosts.c.name, hosts.c.applied_change).where(hosts.c.name.in_(owing))
                    )
                    if applied is None or applied < change
                )
                + sorted(owing - set(self._known_hosts(connection)))
            )
        return ChangeStatusView(change=change, pending_on=pending)

    def _known_hosts(self, connection: Connection) -> list[str]:
        return list(connection.execute(select(hosts.c.name)).scalars())

    def down_hosts(self) -> list[str]:
        """Hosts that serve networks (as their network host, or a multi-host network's
        instances) but whose heartbeat is older than host_down_time."""
        cutoff = self.clock() - timedelta(seconds=self.settings.host_down_time)
        down = (hosts.c.last_heartbeat.is_(None)) | (hosts.c.last_heartbeat < cutoff)
        with self.db.read() as connection:
            holding = set(
                connection.execute(
                    select(hosts.c.name)
                    .join(networks, networks.c.host == hosts.c.name)
                    .where(down)
                    .distinct()
                ).scalars()
            )
            holding.update(
                connection.execute(
                    select(hosts.c.name)
                    .join(instances, instances.c.host == hosts.c.name)
                    .where(down, instances.c.id.in_(_multi_host_instances()))
                    .distinct()
                ).scalars()
            )
        return sorted(holding)

    def evacuate_host(self, dead: str, to: str | None = None) -> EvacuationView:
        """Move a down host's networks, and the floating IPs it NATs, to live hosts in one
        transaction; each new host's agent brings them up. Its instances on multi-host
        networks go too (that host served them): the new host routes them, answers their
        DHCP and NATs their floating IPs, and the dead one, back, serves them no more."""
        from core.views import EvacuationView

        dead = validate.host_name("host", dead)
        if to is not None:
            to = validate.host_name("to", to)
            if to == dead:
                raise Conflict("to", f"{to} is the host being evacuated")
        cutoff = self.clock() - timedelta(seconds=self.settings.host_down_time)
        with self._change("host.evacuate", dead) as (connection, audit):
            self.db.advisory_lock(connection, EVACUATION_LOCK)
            # The host's row stays locked until the move commits: a heartbeat of its
            # agent waits for it and then reads where its networks went, or comes first
            # and the host is alive. A late heartbeat never re-serves a moved network.
            beat = connection.execute(
                select(hosts.c.last_heartbeat).where(hosts.c.name == dead).with_for_update()
            ).first()
            held = connection.execute(
                select(networks.c.id, networks.c.cidr).where(networks.c.host == dead)
            ).all()
            served = connection.execute(
                select(instances.c.id, instances.c.name)
                .where(instances.c.host == dead, instances.c.id.in_(_multi_host_instances()))
                .order_by(instances.c.name)
            ).all()
            if beat is None and not held and not served:
                raise NotFound("host", f"no network host named {dead!r}")
            if beat is not None and beat[0] is not None and beat[0] >= cutoff:
                raise Conflict(
                    "host",
                    f"{dead} is alive (its heartbeat is younger than host_down_time, "
                    f"{self.settings.host_down_time} s); stop its agent first",
                )
            live = self._live_hosts(connection, cutoff, exclude=dead)
            if to is not None and to not in live:
                raise Conflict("to", f"{to} is not a live network host (no recent heartbeat)")
            if not live:
                raise Conflict("host", f"no live network host can take {dead}'s networks")
            moved: dict[str, list[str]] = {}
            for network_id, cidr in held:
                target = to or self._least_loaded(connection, live)
                connection.execute(
                    update(networks).where(networks.c.id == network_id).values(host=target)
                )
                moved.setdefault(target, []).append(cidr)
                audit.network_ids.add(network_id)
            rebuilt = self._move_instances(
                connection, served, to or self._least_loaded(connection, live)
            )
            audit.network_ids.update(rebuilt.network_ids)
            floating = self._move_floating(connection, dead, to, live)
            audit.hosts.update({dead, *moved, *floating.values(), *rebuilt.hosts.values()})
            audit.floating_addresses.update(floating)
            audit.after = {"networks": moved, "floating": floating, "instances": rebuilt.hosts}
        return EvacuationView(
            host=dead,
            networks=tuple((cidr, host) for host, cidrs in sorted(moved.items()) for cidr in cidrs),
            floating=tuple(sorted(floating.items())),
            instances=tuple(sorted(rebuilt.hosts.items())),
        )

    def _move_instances(
        self, connection: Connection, served: Sequence[Any], target: str
    ) -> _Moved:
        """The dead host's instances on multi-host networks, to ``target``, which gets
        its own address on each of their networks; returns what moved."""
        moved = _Moved()
        if not served:
            return moved
        ids = [row.id for row in served]
        for network in connection.execute(
            select(networks)
            .where(
                networks.c.multi_host.is_(True),
                networks.c.id.in_(
                    select(fixed_ips.c.network_id).where(fixed_ips.c.instance_id.in_(ids))
                ),
            )
            .order_by(networks.c.id)
        ):
            hostgateways.reserve_for(connection, network, target)
            moved.network_ids.add(network.id)
        connection.execute(update(instances).where(instances.c.id.in_(ids)).values(host=target))
        moved.hosts.update({row.name: target for row in served})
        return moved

    def _live_hosts(self, connection: Connection, cutoff: Any, exclude: str) -> list[str]:
        return sorted(
            connection.execute(
                select(hosts.c.name).where(
                    hosts.c.last_heartbeat >= cutoff, hosts.c.name != exclude
                )
            ).scalars()
        )

    def _least_loaded(self, connection: Connection, live: list[str]) -> str:
        load: dict[str, int] = dict(
            connection.execute(
                select(networks.c.host, func.count(networks.c.id))
                .where(networks.c.host.in_(live))
                .group_by(networks.c.host)
            ).all()
        )
        return min(live, key=lambda host: (load.get(host, 0), host))

    def _move_floating(
        self, connection: Connection, dead: str, to: str | None, live: list[str]
    ) -> dict[str, str]:
        """The floating IPs ``dead`` NATed go where their instance's network now is (an
        unassociated one to the first live host); returns address -> new host."""
        rows = connection.execute(
            select(
                floating_ips.c.id,
                floating_ips.c.address,
                # A multi-host network's floating IPs are NATed where their instance runs.
                case((networks.c.multi_host, instances.c.host), else_=networks.c.host),
            )
            .select_from(floating_ips)
            .outerjoin(fixed_ips, floating_ips.c.fixed_ip_id == fixed_ips.c.id)
            .outerjoin(networks, fixed_ips.c.network_id == networks.c.id)
            .outerjoin(instances, fixed_ips.c.instance_id == instances.c.id)
            .where(floating_ips.c.host == dead)
        ).all()
        moved = {}
        for floating_id, address, network_host in rows:
            target = network_host if network_host not in (None, dead) else (to or live[0])
            connection.execute(
                update(floating_ips).where(floating_ips.c.id == floating_id).values(host=target)
            )
            moved[address] = target
        return moved


@functools.cache
def _heartbeat_statement(dialect: str, *, with_vpn_ip: bool) -> Any:
    """INSERT of the host's row that, when the row is there, sets its heartbeat alone
    (and, from the host itself, the address its VPN clients reach it at)."""
    # Each dialect's insert is imported only where used: PostgreSQL's costs 50 ms.
    if dialect == "postgresql":
        from sqlalchemy.dialects.postgresql import insert as pg_insert

        statement: Any = pg_insert(hosts)
    else:
        from sqlalchemy.dialects.sqlite import insert as sqlite_insert

        statement = sqlite_insert(hosts)
    values: dict[str, Any] = {
        "name": bindparam("name"),
        "role": "network",
        "last_heartbeat": bindparam("now", type_=hosts.c.last_heartbeat.type),
    }
    if with_vpn_ip:
        values["vpn_ip"] = bindparam("vpn_ip")
    statement = statement.values(**values)
    kept = ["last_heartbeat", "vpn_ip"] if with_vpn_ip else ["last_heartbeat"]
    return statement.on_conflict_do_update(
        index_elements=["name"], set_={name: statement.excluded[name] for name in kept}
    )
