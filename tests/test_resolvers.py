"""Which upstream resolvers a network's dnsmasq is given when netcon.toml names none."""

from __future__ import annotations

from pathlib import Path

import pytest

from core.linux import resolvers

RESOLV = """# written by the installer
search example.org
nameserver 127.0.0.53
nameserver 192.0.2.1
nameserver 192.0.2.1
nameserver 2001:db8::1
nameserver fe80::1%eth0
nameserver ::1
nameserver not-an-address
options edns0
"""


def test_loopback_resolvers_are_kept_only_where_they_are_reachable() -> None:
    assert resolvers.parse(RESOLV, loopback=True) == (
        "127.0.0.53",
        "192.0.2.1",
        "2001:db8::1",
        "::1",
    )
    # Inside a network namespace the host's 127.0.0.53 is another, empty loopback.
    assert resolvers.parse(RESOLV, loopback=False) == ("192.0.2.1", "2001:db8::1")


def test_a_namespace_reads_its_own_resolv_conf_as_ip_netns_exec_shows_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    host = tmp_path / "resolv.conf"
    host.write_text("nameserver 127.0.0.53\nnameserver 198.51.100.53\n")
    monkeypatch.setattr(resolvers, "RESOLV_CONF", host)
    monkeypatch.setattr(resolvers, "NETNS_ETC", tmp_path / "netns")
    assert resolvers.host_resolvers(None) == ("127.0.0.53", "198.51.100.53")
    assert resolvers.host_resolvers("nh1") == ("198.51.100.53",)
    own = tmp_path / "netns" / "nh1" / "resolv.conf"
    own.parent.mkdir(parents=True)
    own.write_text("nameserver 127.0.0.1\n")
    assert resolvers.host_resolvers("nh1") == ("127.0.0.1",)
    host.unlink()
    assert resolvers.host_resolvers(None) == ()
