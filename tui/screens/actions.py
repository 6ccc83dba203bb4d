"""Every action that changes state: its key, the views it applies to, its dialog and the
service call it makes. Read-only mode hides all of them (``check_action``).

Destructive actions sit on shifted or non-navigation keys (``D``, ``X``, ``x``, ``R``)
and always go through :class:`ConfirmDialog`, which names the CIDR, address or user.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import partial
from typing import TYPE_CHECKING, Any, ClassVar

from textual import work
from textual.binding import Binding
from textual.widgets import Input

from core import validate
from core.errors import InvalidInput, NetconError
from tui.screens.resources import rule_text
from tui.widgets.dialogs import ClientConfigDialog, ConfirmDialog, Field, FormDialog, PickDialog

if TYPE_CHECKING:
    from tui.screens.main import MainScreen

# action name -> views where it applies
WHERE: dict[str, set[str]] = {
    "create_project": {"projects"},
    "delete_project": {"projects"},
    "create_network": {"networks"},
    "delete_network": {"networks"},
    "reserve_fixed": {"fixed"},
    "unreserve_fixed": {"fixed"},
    "allocate_floating": {"floating"},
    "allocate_for_project": {"projects"},
    "associate_floating": {"floating"},
    "disassociate_floating": {"floating"},
    "release_floating": {"floating"},
    "create_floating_range": {"floating"},
    "delete_floating_range": {"floating"},
    "launch_instance": {"instances"},
    "launch_for_project": {"projects"},
    "terminate_instance": {"instances"},
    "create_secgroup": {"secgroups"},
    "delete_secgroup": {"secgroups"},
    "add_rule": {"secgroups"},
    "remove_rule": {"secgroups"},
    "apply_host": {"hosts"},
    "run_vpn": {"vpn"},
    "stop_vpn": {"vpn"},
    "vpn_client_config": {"vpn"},
    "revoke_vpn_user": {"vpn"},
}
# Reading actions that still depend on the view.
READING: dict[str, set[str]] = {"plan_host": {"hosts"}}


def _choice(field: str, options: tuple[str, ...]) -> Callable[[str], str]:
    def check(text: str) -> str:
        if text not in options:
            raise InvalidInput(field, f"{text!r} must be one of {', '.join(options)}")
        return text

    return check


def _names(field: str) -> Callable[[str], list[str]]:
    def check(text: str) -> list[str]:
        return [validate.name(field, part.strip()) for part in text.split(",") if part.strip()]

    return check


def _ports(field: str) -> Callable[[str], int]:
    # ICMP uses -1 for "any type/code"; tcp and udp ports are 1-65535 (the service
    # checks the protocol-specific rule again).
    def check(text: str) -> int:
        if text == "-1":
            return -1
        return validate.integer(field, text, 0, 65535)

    return check


class ActionsMixin:
    """Mixed into :class:`MainScreen`; ``self`` is the screen."""

    MUTATING: ClassVar[frozenset[str]] = frozenset(WHERE)

    ACTION_BINDINGS: ClassVar[list[Binding]] = [
        Binding("n", "create_project", "New project"),
        Binding("D", "delete_project", "Delete project"),
        Binding("n", "create_network", "New network"),
        Binding("D", "delete_network", "Delete network"),
        Binding("r", "reserve_fixed", "Reserve"),
        Binding("u", "unreserve_fixed", "Unreserve"),
        Binding("n", "allocate_floating", "Allocate FIP"),
        Binding("a", "associate_floating", "Associate"),
        Binding("x", "disassociate_floating", "Disassociate"),
        Binding("D", "release_floating", "Release"),
        Binding("c", "create_floating_range", "New range", show=False),
        Binding("X", "delete_floating_range", "Delete range", show=False),
        Binding("n", "launch_instance", "Launch"),
        Binding("L", "launch_for_project", "Launch here"),
        Binding("A", "allocate_for_project", "Allocate FIP here"),
        Binding("D", "terminate_instance", "Terminate"),
        Binding("n", "create_secgroup", "New group"),
        Binding("D", "delete_secgroup", "Delete group"),
        Binding("a", "add_rule", "Add rule"),
        Binding("x", "remove_rule", "Remove rule"),
        Binding("r", "run_vpn", "Run VPN"),
        Binding("X", "stop_vpn", "Stop VPN"),
        # Off the footer, which 80 columns fill already; `?` and the palette list them.
        Binding("c", "vpn_client_config", "Client config", show=False),
        Binding("R", "revoke_vpn_user", "Revoke user", show=False),
        Binding("P", "plan_host", "Plan"),
        Binding("A", "apply_host", "Apply"),
    ]

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        screen: MainScreen = self  # type: ignore[assignment]
        if action in WHERE:
            if screen.netcon.read_only:
                return False
            return screen.state.resource.name in WHERE[action]
        if action in READING:
            return screen.state.resource.name in READING[action]
        if action in ("command_line", "filter"):
            # While typing in a prompt, ':' and '/' are just characters.
            return not isinstance(screen.focused, Input)
        return True

    # -- small helpers -------------------------------------------------------------------

    def _screen(self) -> MainScreen:
        return self  # type: ignore[return-value]

    def _item(self, kind: str) -> Any:
        item = self._screen().current_item()
        if item is None:
            self._screen().notify(f"Select a {kind} first", severity="warning", timeout=3)
        return item

    def _confirm(self, question: str, target: str, label: str, then: Callable[[], None]) -> None:
        def answered(yes: bool | None) -> None:
            if yes:
                then()

        self._screen().app.push_screen(ConfirmDialog(question, target, label), answered)

    def _form(
        self,
        title: str,
        fields: list[Field],
        submit: str,
        then: Callable[[dict[str, Any]], None],
        note: str = "",
    ) -> None:
        def answered(values: dict[str, Any] | None) -> None:
            if values is not None:
                then(values)

        self._screen().app.push_screen(FormDialog(title, fields, submit, note), answered)

    def _project_names(self) -> tuple[str, ...]:
        return tuple(sorted(self._screen().netcon.known_projects))

    def _default_project(self) -> str:
        item = self._screen().current_item()
        project = getattr(item, "project", None)
        if isinstance(project, str):
            return project
        if self._screen().state.resource.name == "projects" and item is not None:
            return str(item.name)
        return str(self._screen().state.scope.get("project", ""))

    # -- projects ------------------------------------------------------------------------

    def action_create_project(self) -> None:
        def create(values: dict[str, Any]) -> None:
            self._screen().run_service(
                "Create project",
                lambda s: s.create_project(values["name"], values.get("manager")),
                lambda p: f"Project {p.name} created ({p.manager})",
            )

        self._form(
            "New project",
            [
                Field("name", "Name", partial(validate.name, "name")),
                Field(
                    "manager", "Manager", _choice("manager", ("vlan", "flatdhcp", "flat")),
                    placeholder=self._screen().netcon.service.settings.network_manager,
                    optional=True,
                ),
            ],
            "Create",
            create,
        )

    def action_delete_project(self) -> None:
        project = self._item("project")
        if project is None:
            return
        self._confirm(
            "Delete this project? It must have no instances and no floating IPs.",
            project.name,
            "Delete",
            lambda: self._screen().run_service(
                "Delete project",
                lambda s: s.delete_project(project.name),
                lambda _: f"Project {project.name} deleted",
            ),
        )

    # -- networks ------------------------------------------------------------------------

    def action_create_network(self) -> None:
        settings = self._screen().netcon.service.settings

        def create(values: dict[str, Any]) -> None:
            self._screen().run_service(
                "Create network",
                lambda s: s.create_networks(**values),
                lambda nets: "Created " + ", ".join(n.cidr for n in nets),
            )

        self._form(
            "New network (nova-network `network create`)",
            [
                Field(
                    "fixed_range", "Fixed range",
                    lambda t: str(validate.ipv4_network("fixed_range", t)),
                    placeholder=settings.fixed_range, optional=True,
                ),
                Field(
                    "num_networks", "Networks",
                    lambda t: validate.integer("num_networks", t, 1, 4094),
                    placeholder=str(settings.num_networks), optional=True,
                ),
                Field(
                    "network_size", "Size",
                    lambda t: validate.network_size("network_size", t, 4),
                    placeholder=str(settings.network_size), optional=True,
                ),
                Field(
                    "vlan_start", "VLAN start", partial(validate.vlan_id, "vlan_start"),
                    placeholder=str(settings.vlan_start), optional=True,
                ),
                Field(
                    "vpn_start", "VPN port start", partial(validate.port, "vpn_start"),
                    placeholder=str(settings.vpn_start), optional=True,
                ),
                Field(
                    "manager", "Manager", _choice("manager", ("vlan", "flatdhcp", "flat")),
                    placeholder="vlan", optional=True,
                ),
                Field("label", "Label", partial(validate.name, "label"), optional=True),
                Field("bridge", "Bridge", partial(validate.ifname, "bridge"), optional=True,
                      placeholder="br<vlan>"),
                Field(
                    "bridge_interface", "Bridge iface",
                    partial(validate.ifname, "bridge_interface"), optional=True,
                    placeholder=settings.vlan_interface,
                ),
                Field("dns", "DNS", lambda t: str(validate.ipv4_address("dns", t)),
                      optional=True),
                Field(
                    "segmentation", "Segmentation",
                    _choice("segmentation", ("vlan", "vxlan")),
                    placeholder=settings.segmentation, optional=True,
                ),
            ],
            "Create",
            create,
            note="Empty fields take the configured default shown in grey.",
        )

    def action_delete_network(self) -> None:
        network = self._item("network")
        if network is None:
            return
        self._confirm(
            f"Delete network {network.label} (VLAN {network.vlan or '-'}, "
            f"project {network.project or '-'})?",
            network.cidr,
            "Delete",
            lambda: self._screen().run_service(
                "Delete network",
                lambda s: s.delete_network(network.id),
                lambda n: f"Network {n.cidr} deleted",
            ),
        )

    # -- fixed IPs -----------------------------------------------------------------------

    def action_reserve_fixed(self) -> None:
        fixed = self._item("fixed IP")
        if fixed is not None:
            self._screen().run_service(
                "Reserve", lambda s: s.reserve_fixed_ip(fixed.address),
                lambda _: f"{fixed.address} reserved",
            )

    def action_unreserve_fixed(self) -> None:
        fixed = self._item("fixed IP")
        if fixed is not None:
            self._screen().run_service(
                "Unreserve", lambda s: s.unreserve_fixed_ip(fixed.address),
                lambda _: f"{fixed.address} unreserved",
            )

    # -- floating IPs --------------------------------------------------------------------

    def action_allocate_floating(self) -> None:
        def allocate(values: dict[str, Any]) -> None:
            self._screen().run_service(
                "Allocate floating IP",
                lambda s: s.allocate_floating_ip(values["project"], values.get("pool")),
                lambda f: f"{f.address} allocated to {f.project}",
            )

        settings = self._screen().netcon.service.settings
        pool = getattr(self._screen().current_item(), "pool", "")
        self._form(
            "Allocate a floating IP",
            [
                Field(
                    "project", "Project", partial(validate.name, "project"),
                    value=self._default_project(), suggestions=self._project_names(),
                ),
                Field("pool", "Pool", partial(validate.name, "pool"), optional=True,
                      value=pool if isinstance(pool, str) else "",
                      placeholder=settings.default_floating_pool),
            ],
            "Allocate",
            allocate,
        )

    def action_allocate_for_project(self) -> None:
        self.action_allocate_floating()

    def action_launch_for_project(self) -> None:
        self.action_launch_instance()

    def action_associate_floating(self) -> None:
        floating = self._item("floating IP")
        if floating is None:
            return
        if floating.project is None:
            self._screen().notify(
                f"{floating.address} is not allocated to a project; allocate it first (n)",
                severity="warning",
            )
            return
        self._screen().pick_instance_for(floating)

    def associate_with(self, floating: Any, instances: list[Any]) -> None:
        """Called with the project's instances (fetched in a worker): pick one, Enter."""
        choices = []
        for instance in instances:
            addresses = ", ".join(a.address for a in instance.addresses) or "no address"
            taken = [a.floating for a in instance.addresses if a.floating]
            note = f"  (has {', '.join(taken)})" if taken else ""
            choices.append((f"{instance.name:<14} {addresses}{note}", instance.name))

        def chosen(name: str | None) -> None:
            if name:
                self._screen().run_service(
                    "Associate",
                    lambda s: s.associate_floating_ip(floating.address, name),
                    lambda f: f"{f.address} → {f.instance} ({f.fixed_address})",
                )

        self._screen().app.push_screen(
            PickDialog(
                f"Associate {floating.address} with an instance of {floating.project}",
                choices,
            ),
            chosen,
        )

    def action_disassociate_floating(self) -> None:
        floating = self._item("floating IP")
        if floating is None:
            return
        if floating.instance is None:
            self._screen().notify(f"{floating.address} is not associated", severity="warning")
            return
        self._confirm(
            f"Disassociate from {floating.instance} ({floating.fixed_address})?",
            floating.address,
            "Disassociate",
            lambda: self._screen().run_service(
                "Disassociate",
                lambda s: s.disassociate_floating_ip(floating.address),
                lambda f: f"{f.address} disassociated",
            ),
        )

    def action_release_floating(self) -> None:
        floating = self._item("floating IP")
        if floating is None:
            return
        self._confirm(
            f"Release this floating IP from project {floating.project or '-'}?",
            floating.address,
            "Release",
            lambda: self._screen().run_service(
                "Release",
                lambda s: s.release_floating_ip(floating.address),
                lambda _: f"{floating.address} released",
            ),
        )

    def action_create_floating_range(self) -> None:
        settings = self._screen().netcon.service.settings

        def create(values: dict[str, Any]) -> None:
            self._screen().run_service(
                "Create floating range",
                lambda s: s.create_floating_range(
                    values["host"], values["ip_range"], pool=values.get("pool"),
                    interface=values.get("interface"),
                ),
                lambda count: f"{count} floating IPs created in {values['ip_range']}",
            )

        def ip_range(text: str) -> str:
            validate.ip_range("ip_range", text)
            return text

        self._form(
            "New floating range",
            [
                Field("host", "Host", partial(validate.hostname, "host"), value=settings.host),
                Field("ip_range", "Range", ip_range, placeholder="203.0.113.0/28 or A-B"),
                Field("pool", "Pool", partial(validate.name, "pool"), optional=True,
                      placeholder=settings.default_floating_pool),
                Field("interface", "Interface", partial(validate.ifname, "interface"),
                      optional=True, placeholder=settings.public_interface),
            ],
            "Create",
            create,
        )

    def action_delete_floating_range(self) -> None:
        floating = self._screen().current_item()

        def ip_range(text: str) -> str:
            validate.ip_range("ip_range", text)
            return text

        def asked(values: dict[str, Any]) -> None:
            wanted = values["ip_range"]
            count = len(validate.ip_range("ip_range", wanted))
            self._confirm(
                f"Delete every floating IP in this range ({count} addresses)? "
                "None may be allocated.",
                wanted,
                "Delete",
                lambda: self._screen().run_service(
                    "Delete floating range",
                    lambda s: s.delete_floating_range(wanted),
                    lambda n: f"{n} floating IPs deleted from {wanted}",
                ),
            )

        self._form(
            "Delete a floating range",
            [Field("ip_range", "Range", ip_range,
                   value=floating.address if floating is not None else "")],
            "Next",
            asked,
        )

    # -- instances -----------------------------------------------------------------------

    def action_launch_instance(self) -> None:
        def launch(values: dict[str, Any]) -> None:
            self._screen().run_service(
                "Launch",
                lambda s: s.launch_instance(
                    values["project"], values["name"], values.get("groups", [])
                ),
                lambda i: f"Launched {i.name}: "
                + (", ".join(a.address for a in i.addresses) or "no address"),
            )

        self._form(
            "Launch an instance",
            [
                Field(
                    "project", "Project", partial(validate.name, "project"),
                    value=self._default_project(), suggestions=self._project_names(),
                ),
                Field("name", "Name", partial(validate.hostname, "name")),
                Field("groups", "Security groups", _names("security_group"), optional=True,
                      placeholder="default (comma-separated)"),
            ],
            "Launch",
            launch,
        )

    def action_terminate_instance(self) -> None:
        instance = self._item("instance")
        if instance is None:
            return
        addresses = ", ".join(a.address for a in instance.addresses) or "no address"
        self._confirm(
            f"Terminate this instance of {instance.project} ({addresses})?",
            instance.name,
            "Terminate",
            lambda: self._screen().run_service(
                "Terminate",
                lambda s: s.terminate_instance(instance.name),
                lambda _: f"{instance.name} terminated",
            ),
        )

    # -- security groups -----------------------------------------------------------------

    def action_create_secgroup(self) -> None:
        def create(values: dict[str, Any]) -> None:
            self._screen().run_service(
                "Create security group",
                lambda s: s.create_security_group(
                    values["project"], values["name"], values.get("description", "")
                ),
                lambda g: f"Security group {g.name} created in {g.project}",
            )

        self._form(
            "New security group",
            [
                Field(
                    "project", "Project", partial(validate.name, "project"),
                    value=self._default_project(), suggestions=self._project_names(),
                ),
                Field("name", "Name", partial(validate.name, "name")),
                Field("description", "Description", optional=True),
            ],
            "Create",
            create,
        )

    def action_delete_secgroup(self) -> None:
        group = self._item("security group")
        if group is None:
            return
        self._confirm(
            f"Delete security group of project {group.project} with {len(group.rules)} rules?",
            group.name,
            "Delete",
            lambda: self._screen().run_service(
                "Delete security group",
                lambda s: s.delete_security_group(group.project, group.name),
                lambda _: f"Security group {group.name} deleted",
            ),
        )

    def action_add_rule(self) -> None:
        group = self._item("security group")
        if group is None:
            return

        def add(values: dict[str, Any]) -> None:
            self._screen().run_service(
                "Add rule",
                lambda s: s.add_security_group_rule(
                    group.project, group.name, values["protocol"], values["from_port"],
                    values["to_port"], cidr=values.get("cidr"),
                    source_group=values.get("source_group"),
                ),
                lambda r: f"Rule added to {group.name}: {rule_text(r)}",
            )

        self._form(
            f"Add a rule to {group.project}/{group.name}",
            [
                Field("protocol", "Protocol", _choice("protocol", ("tcp", "udp", "icmp")),
                      value="tcp"),
                Field("from_port", "From port", _ports("from_port")),
                Field("to_port", "To port", _ports("to_port")),
                Field("cidr", "CIDR", lambda t: str(validate.ipv4_network("cidr", t)),
                      optional=True, placeholder="0.0.0.0/0"),
                Field("source_group", "Source group", partial(validate.name, "source_group"),
                      optional=True),
            ],
            "Add",
            add,
        )

    def action_remove_rule(self) -> None:
        group = self._item("security group")
        if group is None:
            return
        if not group.rules:
            self._screen().notify(f"{group.name} has no rules", severity="warning")
            return

        def chosen(rule: Any) -> None:
            if rule is None:
                return
            self._confirm(
                f"Remove this rule from {group.project}/{group.name}?",
                rule_text(rule),
                "Remove",
                lambda: self._screen().run_service(
                    "Remove rule",
                    lambda s: s.remove_security_group_rule(rule.id),
                    lambda _: f"Rule #{rule.id} removed",
                ),
            )

        self._screen().app.push_screen(
            PickDialog(
                f"Remove a rule from {group.name}", [(rule_text(r), r) for r in group.rules]
            ),
            chosen,
        )

    # -- hosts ---------------------------------------------------------------------------

    def _this_host(self) -> bool:
        screen = self._screen()
        host = screen.current_item()
        here = screen.netcon.service.settings.host
        if host is not None and host.name != here:
            screen.notify(
                f"plan and apply act on the machine the console runs on ({here}); "
                f"run netcon on {host.name} for that host",
                severity="warning",
            )
            return False
        return True

    def action_plan_host(self) -> None:
        if self._this_host():
            self._screen().show_host_plan(can_apply=False)

    def action_apply_host(self) -> None:
        if self._this_host():
            self._screen().show_host_plan(can_apply=True)

    # -- VPNs ----------------------------------------------------------------------------

    def action_run_vpn(self) -> None:
        vpn = self._item("VPN")
        if vpn is None:
            return
        if vpn.project is None:
            self._screen().notify(
                f"{vpn.network} has no project yet: a VPN runs for a project's network",
                severity="warning",
            )
            return
        project = vpn.project
        self._screen().run_service(
            "Run VPN",
            lambda s: s.run_vpn(project),
            lambda steps: "; ".join(steps) or f"VPN of {project} already runs",
        )

    def action_stop_vpn(self) -> None:
        vpn = self._item("VPN")
        if vpn is None or vpn.project is None:
            return
        project = vpn.project
        where = f"{vpn.public_address}:{vpn.public_port}" if vpn.public_address else vpn.network
        self._confirm(
            f"Stop the VPN of project {project}? Its users lose access until it runs again.",
            f"{project} ({where})",
            "Stop",
            lambda: self._screen().run_service(
                "Stop VPN",
                lambda s: s.stop_vpn(project),
                lambda steps: "; ".join(steps),
            ),
        )

    def _vpn_project(self) -> str | None:
        vpn = self._item("VPN")
        if vpn is None:
            return None
        if vpn.project is None:
            self._screen().notify(
                f"{vpn.network} has no project yet: VPN users belong to a project",
                severity="warning",
            )
            return None
        return str(vpn.project)

    def _user_field(self) -> Field:
        # The core's own rule for user names (they become certificate file names).
        return Field("user", "User", partial(validate.name, "user"))

    def action_vpn_client_config(self) -> None:
        project = self._vpn_project()
        if project is None:
            return

        def issue(values: dict[str, Any]) -> None:
            self._issue_client_config(project, values["user"])

        self._form(
            f"Client configuration for a user of {project}",
            [self._user_field()],
            "Issue",
            issue,
            note="Issues the user's certificate, or reuses the one already issued.",
        )

    @work(thread=True, group="action", exit_on_error=False)
    def _issue_client_config(self, project: str, user: str) -> None:
        # Not run_service: the answer is shown in a dialog, never in a notification,
        # because it holds the user's private key.
        screen = self._screen()
        what = "Client configuration"
        try:
            text = screen.netcon.service.vpn_client_config(project, user)
        except NetconError as exc:
            screen.app.call_from_thread(
                screen.notify, exc.message, title=f"{what} refused", severity="error",
                timeout=8,
            )
            return
        except Exception as exc:  # never let an unexpected error close the console
            screen.app.call_from_thread(
                screen.notify, f"{type(exc).__name__}: {exc}", title=f"{what} failed",
                severity="error", timeout=8,
            )
            return
        screen.app.call_from_thread(self._show_client_config, project, user, text)

    def _show_client_config(self, project: str, user: str, text: str) -> None:
        screen = self._screen()
        screen.app.push_screen(ClientConfigDialog(project, user, text))
        screen.reload()  # the audit log has a new entry

    def action_revoke_vpn_user(self) -> None:
        project = self._vpn_project()
        if project is None:
            return

        def asked(values: dict[str, Any]) -> None:
            user = values["user"]
            self._confirm(
                f"Revoke this user's certificate in project {project}? "
                "Its VPN refuses the user from then on.",
                f"{user} of {project}",
                "Revoke",
                lambda: self._screen().run_service(
                    "Revoke",
                    lambda s: s.revoke_vpn_user(project, user),
                    lambda serial: f"Revoked {user} in {project} (certificate {serial:x})",
                ),
            )

        self._form(f"Revoke a VPN user of {project}", [self._user_field()], "Next", asked)

