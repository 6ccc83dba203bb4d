"""VPN refusals that need no root: nothing is made on disk before the refusal."""

from __future__ import annotations

from pathlib import Path

import pytest

from core.errors import Conflict
from tests.support import make_service


def test_client_config_without_public_address_makes_no_files(tmp_path: Path) -> None:
    service = make_service(tmp_path)  # no vpn_ip: clients would have nowhere to connect
    service.create_networks("10.0.0.0/24", 1, 256, 100, 1000)
    service.create_project("alpha")
    service.launch_instance("alpha", "web1")
    audit_before = len(service.list_audit())
    with pytest.raises(Conflict, match="vpn_public_address"):
        service.vpn_client_config("alpha", "alice")
    state = tmp_path / "state"
    assert not state.exists() or not any(state.rglob("*"))
    assert len(service.list_audit()) == audit_before
