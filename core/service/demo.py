"""`netcon demo`: a small but realistic cloud to explore the console with."""

from __future__ import annotations

import random

from sqlalchemy import func, select

from core.errors import Conflict
from core.service.floating import FloatingService
from core.service.instances import InstanceService
from core.service.networks import NetworkService
from core.service.secgroups import SecurityGroupService
from core.store.schema import projects

# Documentation address blocks (RFC 5737) stand in for the public range.
DEMO_PUBLIC_RANGE = "203.0.113.0/28"


class DemoService(NetworkService, InstanceService, FloatingService, SecurityGroupService):
    def load_demo(self, segmentation: str | None = None) -> None:
        """The demo cloud; its VLAN networks' segments are ``segmentation`` ("vlan" or
        "vxlan"; by default what the settings say)."""
        with self.db.read() as connection:
            if connection.execute(select(func.count(projects.c.id))).scalar():
                raise Conflict(
                    "database", "already holds projects; demo data goes into an empty one"
                )
        # A fixed seed gives the same MACs every time, so screenshots are comparable.
        saved, self.rng = self.rng, random.Random(2010)
        try:
            self._build_demo(segmentation)
        finally:
            self.rng = saved

    def _build_demo(self, segmentation: str | None) -> None:
        host = self.settings.host
        self.create_networks(
            "10.0.0.0/16", 4, 256, 100, 1000, manager="vlan", label="tenant",
            segmentation=segmentation,
        )
        self.create_networks("10.10.0.0/24", manager="flatdhcp", bridge="brdhcp", label="shared")
        self.create_networks("10.20.0.0/24", manager="flat", bridge="brflat", label="legacy")
        for name, kind in (
            ("alpha", "vlan"),
            ("beta", "vlan"),
            ("gamma", "vlan"),
            ("ops", "flatdhcp"),
            ("legacy", "flat"),
        ):
            self.create_project(name, kind)
        self.create_security_group("alpha", "web", "HTTP and HTTPS from anywhere")
        self.add_security_group_rule("alpha", "web", "tcp", 80, 80)
        self.add_security_group_rule("alpha", "web", "tcp", 443, 443)
        self.add_security_group_rule("alpha", "default", "icmp", -1, -1)
        self.add_security_group_rule("beta", "default", "tcp", 22, 22, cidr="198.51.100.0/24")
        for project, name, groups in (
            ("alpha", "web1", ["default", "web"]),
            ("alpha", "web2", ["default", "web"]),
            ("alpha", "db1", ["default"]),
            ("beta", "app1", ["default"]),
            ("beta", "app2", ["default"]),
            ("ops", "monitor1", ["default"]),
            ("legacy", "mail1", ["default"]),
        ):
            self.launch_instance(project, name, groups)
        self.create_floating_range(host, DEMO_PUBLIC_RANGE, pool="public")
        web1 = self.allocate_floating_ip("alpha", "public")
        self.associate_floating_ip(web1.address, "web1")
        web2 = self.allocate_floating_ip("alpha", "public")
        self.associate_floating_ip(web2.address, "web2")
        self.allocate_floating_ip("alpha", "public")
        app1 = self.allocate_floating_ip("beta", "public")
        self.associate_floating_ip(app1.address, "app1")
