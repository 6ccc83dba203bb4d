"""One browser session's console process, on textual-serve's AppService.

AppService speaks the web driver's packet protocol and hands files to the download
manager; what it lacks for a server left running is what this class adds: the console is
started without a shell (the database URL never passes one), in a session of its own
(a ctrl+c at the server's terminal is the server's, which then ends each console), is
ended for sure when its tab closes (quit, then SIGTERM, then SIGKILL), and says how it
ended, so the page can tell a console that was quit from one that died.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import signal
from asyncio.subprocess import Process
from collections import deque
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass

from textual_serve.app_service import AppService
from textual_serve.download_manager import DownloadManager

log = logging.getLogger("netcon.serve")

# How long a console is given to quit when its tab closes, then to end on SIGTERM.
QUIT_GRACE = 3.0
TERM_GRACE = 2.0
# Lines the web driver may print before its first packet.
PRELUDE_LINES = 10
STDERR_LINES = 20

# Websocket close codes the page reads (4000-4999 are the application's own).
QUIT = 4000
DIED = 4001
LIMIT = 4002
# A websocket close reason is at most 123 bytes.
REASON_BYTES = 120


async def _dropped(data: bytes | str) -> None:
    return None


@dataclass(frozen=True)
class Ending:
    """How a console ended, as the websocket's close code and reason say it."""

    code: int
    reason: str

    def reason_bytes(self) -> bytes:
        data = self.reason.encode()
        if len(data) <= REASON_BYTES:
            return data
        return data[: REASON_BYTES - 3].decode(errors="ignore").encode() + "…".encode()


class ConsoleSession(AppService):
    def __init__(
        self,
        argv: Sequence[str],
        environment: Mapping[str, str],
        *,
        download_manager: DownloadManager,
    ) -> None:
        super().__init__(
            " ".join(argv),
            write_bytes=_dropped,
            write_str=_dropped,
            close=self._never_close,
            download_manager=download_manager,
        )
        self.argv = list(argv)
        self.extra_environment = dict(environment)
        self.quit_by_console = False
        self._stderr: deque[str] = deque(maxlen=STDERR_LINES)

    async def spawn(self, width: int, height: int) -> None:
        """Start the console process; what it draws waits in its pipe until relayed."""
        await self._open_app_process(width, height)

    def relay(
        self,
        write_bytes: Callable[[bytes], Awaitable[None]] = _dropped,
        write_str: Callable[[str], Awaitable[None]] = _dropped,
    ) -> None:
        """Pass what the console draws to a browser from now on."""
        self.remote_write_bytes = write_bytes
        self.remote_write_str = write_str
        self._task = asyncio.create_task(self.run())

    async def _never_close(self) -> None:
        # The web driver says "exit" before the process has ended; the socket is closed
        # once its exit status is known (see ended()).
        return None

    @property
    def pid(self) -> int | None:
        return self._process.pid if self._process is not None else None

    async def _open_app_process(self, width: int = 80, height: int = 24) -> Process:
        environment = {**self._build_environment(width, height), **self.extra_environment}
        self._process = process = await asyncio.create_subprocess_exec(
            *self.argv,
            stdin=asyncio.subprocess.PIPE,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
            env=environment,
            start_new_session=True,
        )
        assert process.stdin is not None
        self._stdin = process.stdin
        return process

    async def run(self) -> None:
        """Relay the console's packets to the browser until its output ends."""
        process = self._process
        assert process is not None and process.stdout is not None
        stdout = process.stdout
        errors = asyncio.create_task(self._read_stderr())
        try:
            for _ in range(PRELUDE_LINES):
                line = await stdout.readline()
                if not line or line == b"__GANGLION__\n":
                    break
            while True:
                kind = await stdout.readexactly(1)
                size = int.from_bytes(await stdout.readexactly(4), "big")
                payload = await stdout.readexactly(size)
                if kind == b"D":
                    await self.on_data(payload)
                elif kind == b"M":
                    await self.on_meta(payload)
                elif kind == b"P":
                    await self.on_packed(payload)
        except (asyncio.IncompleteReadError, ConnectionResetError):
            pass
        except Exception:  # a browser gone mid-write: the console is stopped after
            log.debug("relay ended", exc_info=True)
        finally:
            with contextlib.suppress(asyncio.CancelledError):
                await errors

    async def _read_stderr(self) -> None:
        process = self._process
        assert process is not None and process.stderr is not None
        async for line in process.stderr:
            text = line.decode(errors="replace").rstrip()
            if text:
                self._stderr.append(text)

    async def on_meta(self, data: bytes) -> None:
        meta = json.loads(data)
        if isinstance(meta, dict) and meta.get("type") == "exit":
            self.quit_by_console = True
            return
        await super().on_meta(data)

    async def ended(self) -> Ending:
        """Wait for the console to end by itself, and say how."""
        await self._relayed()
        process = self._process
        assert process is not None
        status = await process.wait()
        return self.ending(status)

    def ending(self, status: int) -> Ending:
        if status == 0 and self.quit_by_console:
            return Ending(QUIT, "the console was quit")
        if status < 0:
            try:
                name = signal.Signals(-status).name
            except ValueError:
                name = f"signal {-status}"
            how = f"killed by {name}"
        else:
            how = f"exit status {status}"
        last = self._stderr[-1] if self._stderr else ""
        return Ending(DIED, f"the console process ended ({how}){': ' + last if last else ''}")

    @property
    def stderr_tail(self) -> list[str]:
        return list(self._stderr)

    async def stop(self) -> None:
        """End the console whatever it is doing: ask it to quit, then signal it."""
        process = self._process
        if process is None:
            return
        await self._download_manager.cancel_app_downloads(app_service_id=self.app_service_id)
        if self._task is None:
            # Never shown in a browser: its output is drained so that it can exit.
            self.relay()
        if process.returncode is None:
            await self.send_meta({"type": "quit"})
            for number, grace in ((None, QUIT_GRACE), (signal.SIGTERM, TERM_GRACE),
                                  (signal.SIGKILL, None)):
                if number is not None:
                    with contextlib.suppress(ProcessLookupError):
                        process.send_signal(number)
                try:
                    await asyncio.wait_for(process.wait(), grace)
                    break
                except TimeoutError:
                    continue
        await self._relayed()
        self._task = None

    async def _relayed(self) -> None:
        """Wait until the relay has ended, without ever cancelling it: asyncio.wait does
        not pass a cancellation of the waiter on to what it waits for."""
        if self._task is not None:
            await asyncio.wait({self._task})
