"""Rules of both families from the console: the Add rule dialog takes an IPv6 CIDR and a
family, refuses a CIDR of the other family in the field's own line, and the rules table
shows each rule's family. Keys go in one burst."""

from __future__ import annotations

from collections.abc import Callable

from textual.widgets import Select

from core.service import NetconService
from tests.tui.conftest import settle
from tests.tui.test_flows import field, press_at_once
from tui.app import NetconApp
from tui.widgets.dialogs import FormDialog

MakeApp = Callable[..., NetconApp]


def _web_rules(service: NetconService) -> list[tuple[str, int, str | None, str]]:
    web = next(g for g in service.list_security_groups("alpha") if g.name == "web")
    return [(r.protocol, r.from_port, r.cidr, r.ethertype) for r in web.rules]


async def test_add_rule_takes_an_ipv6_cidr_and_its_family(
    make_app: MakeApp, demo_service: NetconService
) -> None:
    demo_service.add_security_group_rule("alpha", "web", "icmpv6", 128, -1)
    before = _web_rules(demo_service)
    app = make_app(start="secgroups")
    async with app.run_test(size=(100, 30)) as pilot:
        await settle(pilot)
        press_at_once(pilot, "slash", *"web", "enter", "enter")
        await settle(pilot)
        press_at_once(pilot, "a")
        await settle(pilot)
        assert isinstance(app.screen, FormDialog)
        assert field(app, "cidr").placeholder == "default: 0.0.0.0/0, or ::/0 for IPv6"
        # An IPv6 range on a rule said to be IPv4: refused, naming the CIDR, nothing made.
        app.screen.query_one("#field-ethertype", Select).value = "IPv4"
        field(app, "cidr").focus()
        press_at_once(pilot, *"2001:db8::/32")
        await settle(pilot)
        field(app, "from_port").focus()
        press_at_once(pilot, *"22", "enter")
        await settle(pilot)
        form = app.screen
        assert isinstance(form, FormDialog)
        error = form.query_one("#error-cidr")
        assert "2001:db8::/32 is an IPv6 range; the rule's ethertype is IPv4" in str(error.render())
        assert _web_rules(demo_service) == before
        # The family left to the CIDR: an IPv6 rule.
        form.query_one("#field-ethertype", Select).clear()
        field(app, "from_port").focus()
        press_at_once(pilot, "enter")
        await settle(pilot)
        assert not isinstance(app.screen, FormDialog)
        assert _web_rules(demo_service) == [*before, ("tcp", 22, "2001:db8::/32", "IPv6")]
        # The table says each rule's family, and ICMP of IPv6 as icmpv6.
        source = app.main.table.source
        rows = [" ".join(source.row(i).cells) for i in range(source.total)]  # type: ignore[union-attr]
        assert any("IPv6" in row and "2001:db8::/32" in row for row in rows), rows
        assert any("IPv6" in row and "icmpv6" in row and "::/0" in row for row in rows), rows
        assert any("IPv4" in row and "0.0.0.0/0" in row for row in rows), rows
