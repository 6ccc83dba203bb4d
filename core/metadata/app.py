"""The metadata HTTP application: what an instance learns about itself.

The instance is the one whose fixed IP the request comes from, on the network whose
gateway the request arrived at: never anything the guest says (no header is read for
it). Anti-spoofing on its port (security groups) is what makes that address its own;
the DNAT to this server keeps the source address as the guest sent it and sends each
bridge's guests to their own network's gateway, which is the connection's local address.

Paths are cloud-init's: EC2's ``/latest/meta-data/...`` and ``/latest/user-data``, and
OpenStack's ``/openstack/latest/meta_data.json``, ``network_data.json`` and ``user_data``.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from aiohttp import web

from core.views import MetadataView

# (source address, local address the connection arrived at) -> the instance, if any.
Lookup = Callable[[str, str], MetadataView | None]
# Older EC2 versions cloud-init may ask for are served like 'latest'.
EC2_VERSIONS = ("1.0", "2007-01-19", "2007-03-01", "2007-08-29", "2007-10-10", "2007-12-15",
                "2008-02-01", "2008-09-01", "2009-04-04", "latest")  # fmt: skip
# An instance's answers are kept this long: cloud-init asks a dozen paths at boot.
CACHE_SECONDS = 2.0


class InstanceCache:
    """Looks instances up by address in one worker thread, and keeps each answer for a
    moment.

    One thread: the database layer is synchronous and its SQLite engine shares one
    connection, which concurrent threads would close under each other. Requests of one
    instance that arrive together wait for the same look-up instead of queueing more.
    """

    def __init__(self, lookup: Lookup) -> None:
        self.lookup = lookup
        self.entries: dict[tuple[str, str], tuple[float, MetadataView | None]] = {}
        self.pending: dict[tuple[str, str], asyncio.Future[MetadataView | None]] = {}
        self.worker = ThreadPoolExecutor(max_workers=1, thread_name_prefix="metadata-db")

    async def get(self, address: str, local: str) -> MetadataView | None:
        now = time.monotonic()
        key = (address, local)
        cached = self.entries.get(key)
        if cached is not None and now - cached[0] < CACHE_SECONDS:
            return cached[1]
        waiting = self.pending.get(key)
        if waiting is not None:
            return await asyncio.shield(waiting)
        if len(self.entries) > 4096:
            self.entries = {k: v for k, v in self.entries.items() if now - v[0] < CACHE_SECONDS}
        loop = asyncio.get_running_loop()
        future = loop.run_in_executor(self.worker, self.lookup, address, local)
        self.pending[key] = future
        try:
            view = await asyncio.shield(future)
        finally:
            self.pending.pop(key, None)
        self.entries[key] = (time.monotonic(), view)
        return view


CACHE = web.AppKey("cache", InstanceCache)


def _text(lines: list[str] | str) -> web.Response:
    body = lines if isinstance(lines, str) else "\n".join(lines)
    return web.Response(text=body, content_type="text/plain")


def ec2_meta_data(view: MetadataView) -> dict[str, Any]:
    """The tree under /latest/meta-data/: a string is a leaf, a dict a directory."""
    hostname = f"{view.name}.{view.domain}"
    tree: dict[str, Any] = {
        "ami-launch-index": "0",
        "hostname": hostname,
        "instance-id": f"i-{view.instance_id:08x}",
        "local-hostname": hostname,
        "local-ipv4": view.address,
        "mac": view.mac,
        "placement": {"availability-zone": "nova"},
        "security-groups": "\n".join(view.security_groups),
    }
    if view.address_v6:
        tree["ipv6"] = view.address_v6
    if view.floating:
        tree["public-ipv4"] = view.floating
    if view.public_key:
        tree["public-keys"] = {f"0={view.key_name}": {"openssh-key": view.public_key + "\n"}}
    return tree


def openstack_meta_data(view: MetadataView) -> dict[str, Any]:
    keys = {view.key_name: view.public_key} if view.key_name and view.public_key else {}
    return {
        "uuid": f"i-{view.instance_id:08x}",
        "name": view.name,
        "hostname": f"{view.name}.{view.domain}",
        "project_id": view.project,
        "availability_zone": "nova",
        "launch_index": 0,
        "public_keys": keys,
        "keys": [{"name": name, "type": "ssh", "data": data} for name, data in keys.items()],
    }


def openstack_network_data(view: MetadataView) -> dict[str, Any]:
    link = f"tap-{view.instance_id}"
    networks = [
        {
            "id": "network0",
            "link": link,
            "type": "ipv4",
            "ip_address": view.address,
            "netmask": view.netmask,
            "routes": [{"network": "0.0.0.0", "netmask": "0.0.0.0", "gateway": view.gateway}],
            "network_id": view.cidr,
        }
    ]
    if view.address_v6 and view.cidr_v6:
        # OpenStack's types name the address mode: ipv6_slaac, ipv6_dhcpv6-stateful, ...
        networks.append(
            {
                "id": "network1",
                "link": link,
                "type": f"ipv6_{view.ipv6_mode or 'slaac'}",
                "ip_address": view.address_v6,
                "netmask": "ffff:ffff:ffff:ffff::",
                "routes": [{"network": "::", "netmask": "::", "gateway": view.gateway_v6}],
                "network_id": view.cidr_v6,
            }
        )
    return {
        "links": [{"id": link, "type": "phy", "ethernet_mac_address": view.mac, "mtu": view.mtu}],
        "networks": networks,
        "services": [{"type": "dns", "address": address} for address in view.dns],
    }


async def _instance(request: web.Request) -> MetadataView:
    cache = request.app[CACHE]
    # The socket's own addresses, never request.remote (which a proxy setup may take
    # from a header the guest writes).
    transport = request.transport
    peer = transport.get_extra_info("peername") if transport is not None else None
    local = transport.get_extra_info("sockname") if transport is not None else None
    if not peer or not local:
        raise web.HTTPNotFound(text="the connection has no address\n")
    address = str(peer[0])
    view = await cache.get(address, str(local[0]))
    if view is None:
        raise web.HTTPNotFound(text=f"no instance has the address {address}\n")
    return view


async def root(request: web.Request) -> web.Response:
    return _text(list(EC2_VERSIONS))


async def ec2_version(request: web.Request) -> web.Response:
    view = await _instance(request)
    entries = ["meta-data/"] + (["user-data"] if view.user_data else [])
    return _text(entries)


async def ec2_meta(request: web.Request) -> web.Response:
    view = await _instance(request)
    node: Any = ec2_meta_data(view)
    for part in [p for p in request.match_info["path"].split("/") if p]:
        if not isinstance(node, dict):
            raise web.HTTPNotFound()
        # public-keys/0/ names the key listed as "0=name".
        match = next((k for k in node if k == part or k.split("=", 1)[0] == part), None)
        if match is None:
            raise web.HTTPNotFound()
        node = node[match]
    if isinstance(node, dict):
        # A directory lists its entries; EC2 lists a key as "0=name", without a slash.
        return _text(
            [k + "/" if isinstance(v, dict) and "=" not in k else k for k, v in node.items()]
        )
    return _text(node)


async def user_data(request: web.Request) -> web.Response:
    view = await _instance(request)
    if not view.user_data:
        raise web.HTTPNotFound(text="no user data\n")
    return web.Response(body=view.user_data, content_type="application/octet-stream")


async def openstack_root(request: web.Request) -> web.Response:
    return _text(["latest"])


async def openstack_version(request: web.Request) -> web.Response:
    view = await _instance(request)
    entries = ["meta_data.json", "network_data.json"] + (["user_data"] if view.user_data else [])
    return _text(entries)


async def openstack_document(request: web.Request) -> web.Response:
    view = await _instance(request)
    build = {"meta_data.json": openstack_meta_data, "network_data.json": openstack_network_data}
    document = build.get(request.match_info["name"])
    if document is None:
        raise web.HTTPNotFound()
    return web.Response(text=json.dumps(document(view)), content_type="application/json")


def make_app(lookup: Lookup) -> web.Application:
    app = web.Application()
    app[CACHE] = InstanceCache(lookup)
    app.router.add_get("/", root)
    for version in EC2_VERSIONS:
        app.router.add_get(f"/{version}", ec2_version)
        app.router.add_get(f"/{version}/", ec2_version)
        app.router.add_get(f"/{version}/meta-data/{{path:.*}}", ec2_meta)
        app.router.add_get(f"/{version}/meta-data", ec2_meta)
        app.router.add_get(f"/{version}/user-data", user_data)
    app.router.add_get("/openstack", openstack_root)
    app.router.add_get("/openstack/", openstack_root)
    app.router.add_get("/openstack/latest", openstack_version)
    app.router.add_get("/openstack/latest/", openstack_version)
    app.router.add_get("/openstack/latest/user_data", user_data)
    app.router.add_get("/openstack/latest/{name}", openstack_document)
    return app
