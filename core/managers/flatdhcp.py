"""FlatDHCP: one bridge for every project; dnsmasq hands out the addresses."""

from __future__ import annotations

from core.managers.base import NetworkManager
from core.managers.capabilities import FLATDHCP


class FlatDHCPManager(NetworkManager):
    kind = "flatdhcp"
    capabilities = FLATDHCP
