"""The metadata application answers each instance about itself, by its source address."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

from aiohttp.test_utils import TestClient, TestServer

from core.metadata.app import InstanceCache, make_app
from core.views import MetadataView

WEB1 = MetadataView(
    instance_id=42,
    name="web1",
    project="alpha",
    host="nethost1",
    address="127.0.0.1",  # the test client's own address stands for the guest's
    mac="fa:16:3e:00:00:01",
    cidr="10.0.0.0/24",
    netmask="255.255.255.0",
    gateway="10.0.0.1",
    dns=("10.0.0.1",),
    mtu=1450,
    domain="novalocal",
    floating="203.0.113.1",
    security_groups=("default", "web"),
    key_name="admin",
    public_key="ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIHs1 admin@example",
    user_data=b"#cloud-config\nhostname: web1\n",
)


def serve(view: MetadataView | None, check: Callable[[TestClient], Awaitable[None]]) -> None:
    seen: list[tuple[str, str]] = []

    def lookup(address: str, local: str) -> MetadataView | None:
        seen.append((address, local))
        return view

    async def main() -> None:
        async with TestClient(TestServer(make_app(lookup))) as client:
            await check(client)

    asyncio.run(main())
    # Identified by the socket's addresses, whatever the request says.
    assert set(seen) <= {("127.0.0.1", "127.0.0.1")}


async def text(client: TestClient, path: str, status: int = 200) -> str:
    response = await client.get(path)
    assert response.status == status, (path, response.status)
    return await response.text()


def test_ec2_paths_cloud_init_reads() -> None:
    async def check(client: TestClient) -> None:
        assert "latest" in (await text(client, "/")).split()
        assert (await text(client, "/latest/")).split() == ["meta-data/", "user-data"]
        listing = (await text(client, "/latest/meta-data/")).split()
        assert {"instance-id", "hostname", "local-ipv4", "public-ipv4", "security-groups",
                "public-keys/"} <= set(listing)  # fmt: skip
        assert await text(client, "/latest/meta-data/instance-id") == "i-0000002a"
        assert await text(client, "/latest/meta-data/hostname") == "web1.novalocal"
        assert await text(client, "/latest/meta-data/local-ipv4") == "127.0.0.1"
        assert await text(client, "/latest/meta-data/public-ipv4") == "203.0.113.1"
        assert await text(client, "/latest/meta-data/security-groups") == "default\nweb"
        assert await text(client, "/latest/meta-data/public-keys/") == "0=admin"
        assert await text(client, "/latest/meta-data/public-keys/0/") == "openssh-key"
        key = await text(client, "/latest/meta-data/public-keys/0/openssh-key")
        assert key.startswith("ssh-ed25519 ")
        assert await text(client, "/2009-04-04/meta-data/local-ipv4") == "127.0.0.1"
        assert (await (await client.get("/latest/user-data")).read()) == WEB1.user_data
        await text(client, "/latest/meta-data/nothing-here", 404)

    serve(WEB1, check)


def test_openstack_paths() -> None:
    async def check(client: TestClient) -> None:
        meta: dict[str, Any] = json.loads(await text(client, "/openstack/latest/meta_data.json"))
        assert meta["name"] == "web1" and meta["public_keys"] == {"admin": WEB1.public_key}
        network = json.loads(await text(client, "/openstack/latest/network_data.json"))
        assert network["links"][0]["mtu"] == 1450
        assert network["networks"][0]["routes"][0]["gateway"] == "10.0.0.1"
        assert network["services"] == [{"type": "dns", "address": "10.0.0.1"}]
        assert (await (await client.get("/openstack/latest/user_data")).read()) == WEB1.user_data

    serve(WEB1, check)


def test_an_address_no_instance_has_learns_nothing() -> None:
    async def check(client: TestClient) -> None:
        for path in ("/latest/meta-data/instance-id", "/latest/user-data",
                     "/openstack/latest/meta_data.json"):  # fmt: skip
            body = await text(client, path, 404)
            assert "web1" not in body

    serve(None, check)


def test_no_user_data_and_no_floating_ip_are_404() -> None:
    bare = WEB1._replace(user_data=None, floating=None, public_key=None, key_name=None)

    async def check(client: TestClient) -> None:
        assert (await text(client, "/latest/")).split() == ["meta-data/"]
        await text(client, "/latest/user-data", 404)
        await text(client, "/latest/meta-data/public-ipv4", 404)
        assert "public-keys/" not in (await text(client, "/latest/meta-data/")).split()

    serve(bare, check)


def test_what_the_guest_claims_is_not_who_it_is() -> None:
    async def check(client: TestClient) -> None:
        claims = {"X-Forwarded-For": "10.0.0.99", "Forwarded": "for=10.0.0.99",
                  "X-Real-IP": "10.0.0.99", "X-Instance-ID": "i-00000001"}  # fmt: skip
        response = await client.get("/latest/meta-data/local-ipv4", headers=claims)
        assert response.status == 200
        assert await response.text() == "127.0.0.1"

    serve(WEB1, check)


def test_lookups_run_one_at_a_time_and_a_burst_asks_once() -> None:
    # The database layer is synchronous (SQLite shares one connection): never two
    # look-ups at once, and one instance's burst waits for a single one.
    import threading

    calls: list[str] = []
    busy = threading.Lock()

    def lookup(address: str, local: str) -> MetadataView | None:
        assert busy.acquire(blocking=False), "two look-ups at once"
        try:
            calls.append(address)
            time.sleep(0.05)
            return WEB1 if address == "127.0.0.1" else None
        finally:
            busy.release()

    async def main() -> None:
        cache = InstanceCache(lookup)
        views = await asyncio.gather(
            *[cache.get("127.0.0.1", "127.0.0.1") for _ in range(10)],
            *[cache.get(f"10.0.0.{i}", "10.0.0.1") for i in range(2, 6)],
        )
        assert views[:10] == [WEB1] * 10 and views[10:] == [None] * 4

    asyncio.run(main())
    assert calls.count("127.0.0.1") == 1 and len(calls) == 5


def test_the_server_listens_only_once_it_has_seen_the_database(tmp_path: Path) -> None:
    """It listens (and writes the pid file the apply waits for) before loading its
    framework, so what would make it fail later is seen first: a database that is not
    there ends it before it listens, saying why, and the apply that started it says so."""
    pid_file = tmp_path / "server.pid"
    env = {**os.environ, "NETCON_DATABASE_URL": f"sqlite:///{tmp_path / 'missing.db'}"}
    env["XDG_CONFIG_HOME"] = str(tmp_path)
    argv = [sys.executable, "-m", "core.metadata", "--listen", "127.0.0.1:0"]
    result = subprocess.run(
        [*argv, "--pid-file", str(pid_file)], env=env, capture_output=True, text=True
    )
    assert result.returncode == 1
    assert result.stderr.startswith("metadata server: database sqlite:///")
    assert "missing.db" in result.stderr
    assert not pid_file.exists()
