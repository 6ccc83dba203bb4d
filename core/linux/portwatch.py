"""Which links joined a bridge: one namespace's link events, read as they come.

A port a compute side plugs into a bridge after an apply (an instance started, a tap
re-created) comes up at the kernel's default MTU, without hairpin or filter, until the
next apply. The agent listens here and applies that port's network at once, through
the same plan and apply as any change (HostSync, beside the service).
"""

from __future__ import annotations

import contextlib
import select
import socket

from core.linux.netlink import (
    RTM_DELLINK,
    RTM_NEWLINK,
    RTMGRP_LINK,
    Netlink,
    _open_socket,
    _parse_link,
    split_messages,
)


class PortWatch:
    """Link notifications of one namespace; :meth:`wait` says which links joined which
    bridge (by name) since it was last asked."""

    def __init__(self, netns: str | None = None) -> None:
        self._sock = _open_socket(netns)
        try:
            # Subscribed before the links are read: a port plugged in between is seen
            # twice at worst (its apply then finds nothing to do), never missed.
            self._sock.bind((0, RTMGRP_LINK))
            kernel = Netlink(netns)
            try:
                links = kernel.links()
            finally:
                kernel.close()
        except BaseException:
            self._sock.close()
            raise
        self._names = {link.index: link.name for link in links}
        self._masters = {link.index: link.master for link in links}

    def fileno(self) -> int:
        return self._sock.fileno()

    def wait(self, timeout: float) -> dict[str, str]:
        """Block up to ``timeout`` seconds for link events; the links that joined a
        bridge meanwhile, as port name -> bridge name (empty: none did)."""
        joined: dict[str, str] = {}
        ready, _, _ = select.select([self._sock], [], [], max(timeout, 0.0))
        if not ready:
            return joined
        while True:
            try:
                data = self._sock.recv(1 << 20, socket.MSG_DONTWAIT)
            except BlockingIOError:
                break
            except OSError:
                # Events overflowed the buffer: what was missed is unknown, and the
                # agent's periodic re-sync covers it.
                break
            for msg_type, _seq, msg in split_messages(data):
                self._note(msg_type, msg, joined)
        return joined

    def _note(self, msg_type: int, msg: bytes, joined: dict[str, str]) -> None:
        # Bridge-port messages (family AF_BRIDGE) repeat what the link's own say.
        if msg_type not in (RTM_NEWLINK, RTM_DELLINK) or msg[16] != socket.AF_UNSPEC:
            return
        link = _parse_link(msg)
        if msg_type == RTM_DELLINK:
            self._names.pop(link.index, None)
            self._masters.pop(link.index, None)
            joined.pop(link.name, None)
            return
        self._names[link.index] = link.name
        before = self._masters.get(link.index)
        self._masters[link.index] = link.master
        if link.master and link.master != before:
            bridge = self._names.get(link.master)
            if bridge is not None:
                joined[link.name] = bridge

    def close(self) -> None:
        with contextlib.suppress(OSError):
            self._sock.close()
