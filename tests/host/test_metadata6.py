"""The metadata service over IPv6, from where its guests stand: curl asks
http://[fe80::a9fe:a9fe%eth0]/ and gets its own instance's data, whichever of its own
addresses it asks from; the guest keeps exactly one default router; a guest that takes a
neighbour's address is not answered; the server's port is not reachable around the DNAT."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from core.linux.metadata import address, spec
from core.linux.metadata.operations import AddMetadataAddress6, SetMetadataRoute
from tests.host.conftest import Lab, in_ns, sh
from tests.host.guests6 import addresses, default_routes, rdisc6, wait_for
from tests.host.scenario import network_host

pytestmark = pytest.mark.skipif(
    any(sh("sh", "-c", f"command -v {t}", check=False).returncode for t in ("rdisc6", "curl")),
    reason="missing programs: rdisc6, curl (Debian: ndisc6 curl)",
)
META = "http://[fe80::a9fe:a9fe%eth0]/openstack/latest/meta_data.json"
LOCAL_IPV4 = "http://[fe80::a9fe:a9fe%eth0]/latest/meta-data/local-ipv4"


def curl(ns: str, url: str, source: str | None = None) -> str | None:
    """The body curl gets from inside ``ns`` (optionally from ``source``), or None."""
    result = in_ns(
        ns,
        "curl",
        "-g",
        "-s",
        "-f",
        "--max-time",
        "4",
        *(["--interface", source] if source else []),
        url,
        check=False,
    )
    return result.stdout if result.returncode == 0 else None


def _link_local(ns: str, ifname: str = "eth0") -> str:
    """The link-local address the kernel formed for ``ifname`` (not the metadata one)."""

    def formed() -> list[str]:
        found = [a.split("/")[0] for a in addresses(ns, ifname, "link")]
        return [a for a in found if a != spec.ADDRESS6]

    found = wait_for(formed)
    assert found, f"{ifname} in {ns} has no link-local address of its own"
    return str(found[0])  # type: ignore[index]


def test_a_guest_reads_its_own_metadata_over_ipv6_with_one_default_router(
    lab: Lab, tmp_path: Path
) -> None:
    host = network_host(lab, tmp_path)
    service = host.service
    service.create_project("alpha")
    (network,) = service.create_networks(
        "10.94.0.0/24", 1, 256, None, None, "2001:db8:94::/64", segmentation="vxlan"
    )
    web = service.launch_instance("alpha", "web1").addresses[0]
    db = service.launch_instance("alpha", "db1").addresses[0]
    applied = host.sync.sync()
    assert AddMetadataAddress6(network.bridge) in applied.operations
    assert (
        SetMetadataRoute(network.bridge, "2001:db8:94::1", 8775, family=spec.IPV6)
        in applied.operations
    )
    assert host.sync.plan().operations == ()  # a second apply does nothing
    bridge = network.bridge
    # On the bridge, fe80::a9fe:a9fe is valid and never preferred.
    shown = json.loads(in_ns(host.ns, "ip", "-j", "-6", "addr", "show", "dev", bridge).stdout)
    (meta,) = [a for a in shown[0]["addr_info"] if a["local"] == spec.ADDRESS6]
    assert (meta["preferred_life_time"], meta["valid_life_time"]) == (0, 4294967295)

    first = host.instance("web1", web.mac, bridge)
    second = host.instance("db1", db.mac, bridge)
    for guest, port in ((first, web), (second, db)):
        assert wait_for(lambda g=guest: addresses(g)) == [f"{port.address_v6}/64"]
    # Adverts come from the bridge's own link-local address only: exactly one default
    # route, through it, however many adverts have been heard.
    bridge_ll = _link_local(host.ns, bridge)
    assert rdisc6(first)["from"] == bridge_ll
    rdisc6(second)  # one more advert, answering its solicitation
    assert wait_for(lambda: default_routes(first)) == [bridge_ll]
    assert default_routes(second) == [bridge_ll]

    # Each guest gets its own data, from its link-local address (what a link-local
    # destination makes it choose) and from its global one alike.
    found = curl(first, META)
    assert found is not None and json.loads(found)["name"] == "web1"
    found = curl(second, META)
    assert found is not None and json.loads(found)["name"] == "db1"
    assert curl(first, LOCAL_IPV4, source=web.address_v6) == web.address
    assert curl(second, LOCAL_IPV4, source=db.address_v6) == db.address
    assert default_routes(first) == [bridge_ll]  # asking changed nothing

    # db1 takes web1's link-local and global addresses: anti-spoofing drops what it sends
    # from them, so it gets nothing, neither web1's data nor its own.
    web_ll = _link_local(first)
    for stolen in (web_ll, web.address_v6):
        in_ns(second, "ip", "-6", "addr", "add", f"{stolen}/64", "dev", "eth0", "nodad")
        assert curl(second, META, source=stolen) is None, stolen
    # The server's port is reached only through the DNAT, not at the gateway directly.
    assert curl(first, "http://[2001:db8:94::1]:8775/openstack/latest/meta_data.json") is None
    found = curl(first, META)
    assert found is not None and json.loads(found)["name"] == "web1"

    # The last network goes: so do the address and the table.
    service.terminate_instance("web1")
    service.terminate_instance("db1")
    service.delete_network(network.cidr)
    host.sync.sync()
    assert address.carrying(host.ns) == frozenset()
    table = in_ns(host.ns, "nft", "list", "table", "ip6", spec.TABLE6, check=False)
    assert table.returncode != 0
