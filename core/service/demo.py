"""`netcon demo`: a small but realistic cloud to explore the console with."""

from __future__ import annotations

import random
from typing import TYPE_CHECKING

from sqlalchemy import func, select

from core.errors import Conflict
from core.store.schema import projects

if TYPE_CHECKING:
    from core.service import NetconService

# Documentation address blocks (RFC 5737) stand in for the public range.
DEMO_PUBLIC_RANGE = "203.0.113.0/28"


def load_demo(service: NetconService, segmentation: str | None = None) -> None:
    """Fill an empty database with the demo cloud, through the service's public calls
    (each one transaction with its audit record, as a person's would be); its VLAN
    networks' segments are ``segmentation`` ("vlan" or "vxlan"; by default what the
    settings say)."""
    with service.db.read() as connection:
        if connection.execute(select(func.count(projects.c.id))).scalar():
            raise Conflict("database", "already holds projects; demo data goes into an empty one")
    # A fixed seed gives the same MACs every time, so screenshots are comparable.
    saved, service.rng = service.rng, random.Random(2010)
    try:
        _build_demo(service, segmentation)
    finally:
        service.rng = saved


def _build_demo(service: NetconService, segmentation: str | None) -> None:
    host = service.settings.host
    service.create_networks(
        "10.0.0.0/16", 4, 256, 100, 1000, manager="vlan", label="tenant", segmentation=segmentation
    )
    service.create_networks("10.10.0.0/24", manager="flatdhcp", bridge="brdhcp", label="shared")
    service.create_networks("10.20.0.0/24", manager="flat", bridge="brflat", label="legacy")
    for name, kind in (
        ("alpha", "vlan"),
        ("beta", "vlan"),
        ("gamma", "vlan"),
        ("ops", "flatdhcp"),
        ("legacy", "flat"),
    ):
        service.create_project(name, kind)
    service.create_security_group("alpha", "web", "HTTP and HTTPS from anywhere")
    service.add_security_group_rule("alpha", "web", "tcp", 80, 80)
    service.add_security_group_rule("alpha", "web", "tcp", 443, 443)
    service.add_security_group_rule("alpha", "default", "icmp", -1, -1)
    service.add_security_group_rule("beta", "default", "tcp", 22, 22, cidr="198.51.100.0/24")
    for project, name, groups in (
        ("alpha", "web1", ["default", "web"]),
        ("alpha", "web2", ["default", "web"]),
        ("alpha", "db1", ["default"]),
        ("beta", "app1", ["default"]),
        ("beta", "app2", ["default"]),
        ("ops", "monitor1", ["default"]),
        ("legacy", "mail1", ["default"]),
    ):
        service.launch_instance(project, name, groups)
    service.create_floating_range(host, DEMO_PUBLIC_RANGE, pool="public")
    web1 = service.allocate_floating_ip("alpha", "public")
    service.associate_floating_ip(web1.address, "web1")
    web2 = service.allocate_floating_ip("alpha", "public")
    service.associate_floating_ip(web2.address, "web2")
    service.allocate_floating_ip("alpha", "public")
    app1 = service.allocate_floating_ip("beta", "public")
    service.associate_floating_ip(app1.address, "app1")
