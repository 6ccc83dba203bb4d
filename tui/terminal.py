"""The console's terminal driver: Escape typed ahead of other keys stays Escape.

Textual's xterm parser reads ESC and the character after it as one key when both arrive
in the same read: Alt+that key, or, for a character with no Alt form (``:``), the
character alone, the ESC lost. Keys typed ahead over a slow SSH link arrive in one
read, so Esc ``:secgroups`` Enter would leave a dialog open, type into it and confirm
it. The console binds no Alt key, so here an ESC followed by a printable character is
Escape and then that character. What a terminal itself sends after ESC still parses as
before: CSI sequences (``ESC [``: arrows, function keys, mouse, focus, bracketed paste,
kitty keys), SS3 sequences (``ESC O`` and the one character Textual knows after it),
ESC ESC, and ESC before a control character (Alt+Backspace deletes a word in a field).

Inside a bracketed paste nothing is changed: the pasted text is kept as pasted.
"""

from __future__ import annotations

import os
import selectors
from codecs import getincrementaldecoder
from collections.abc import Generator
from typing import TYPE_CHECKING

from textual import constants
from textual._ansi_sequences import ANSI_SEQUENCES_KEYS
from textual._parser import ParseEOF, ParseTimeout, Peek1, Read1, TokenCallback
from textual._xterm_parser import BRACKETED_PASTE_END, BRACKETED_PASTE_START, XTermParser
from textual.drivers.linux_driver import LinuxDriver
from textual.message import Message

if TYPE_CHECKING:
    from textual.driver import Driver

ESC = "\x1b"
# After ESC, the characters that start a sequence a terminal sends (and Textual reads).
CSI = "["
SS3 = "O"


def _ss3_key(character: str) -> bool:
    """Whether ESC O ``character`` is a key Textual reads (F1-F4, keypad, cursor keys in
    application mode), or a modifier digit that starts one."""
    return f"{ESC}{SS3}{character}" in ANSI_SEQUENCES_KEYS or character.isdigit()


def _lone_escape_before(character: str) -> bool:
    """Whether an ESC followed at once by ``character`` was the Escape key pressed
    before that character was typed."""
    return character.isprintable() and character not in (CSI, SS3)


class KeyBurstParser(XTermParser):
    """Textual's xterm parser, with Escape typed ahead of printable keys kept apart.

    It wraps Textual's parse generator: every character goes through to it, except that
    an ESC followed by a printable character is settled first, as Textual settles an ESC
    that nothing followed (by its escape timeout), so that it becomes the Escape key."""

    def parse(self, token_callback: TokenCallback[Message]) -> Generator[Read1 | Peek1, str]:
        inner = super().parse(token_callback)
        request = next(inner)
        # The last characters seen, to know when a bracketed paste starts and ends.
        recent = ""
        in_paste = False
        after_escape = False  # the last character handed to Textual's parser was ESC
        # A character taken in but not yet handed over (the one after ESC O).
        held: str | None = None
        while True:
            if held is not None:
                character, held = held, None
            else:
                try:
                    character = yield request
                except (ParseTimeout, ParseEOF) as ending:
                    try:
                        request = inner.throw(ending)
                    except StopIteration:
                        return
                    after_escape = False
                    continue
            recent = (recent + character)[-len(BRACKETED_PASTE_START):]
            if recent.endswith(BRACKETED_PASTE_START):
                in_paste = True
            elif recent.endswith(BRACKETED_PASTE_END):
                in_paste = False
            try:
                if after_escape and not in_paste:
                    if character == SS3:
                        # ESC O is a key's sequence only with the one character that
                        # ends it, sent with it in the same write.
                        try:
                            following = yield Read1(constants.ESCAPE_DELAY)
                        except ParseTimeout:
                            following = None
                        except ParseEOF:
                            request = inner.throw(ParseTimeout())
                            request = inner.send(character)
                            inner.throw(ParseEOF())
                            return
                        if following is not None and _ss3_key(following):
                            request = inner.send(character)
                            character = following
                        else:
                            request = inner.throw(ParseTimeout())
                            held = following
                    elif _lone_escape_before(character):
                        request = inner.throw(ParseTimeout())
                request = inner.send(character)
            except StopIteration:
                return
            after_escape = character == ESC


class TerminalDriver(LinuxDriver):
    """Textual's Linux terminal driver, reading keys with :class:`KeyBurstParser`, and
    reading no more once the terminal's input has ended (instead of asking again at
    once, for ever)."""

    def run_input_thread(self) -> None:
        parser = KeyBurstParser(self._debug)
        decode = getincrementaldecoder("utf-8")().decode
        with selectors.SelectSelector() as selector:
            selector.register(self.fileno, selectors.EVENT_READ)
            while not self.exit_event.is_set():
                if selector.select(0.1):
                    data = os.read(self.fileno, 4096)
                    if not data:
                        break
                    for message in parser.feed(decode(data)):
                        self.process_message(message)
                for message in parser.tick():
                    self.process_message(message)
        # The terminal is gone: wait for the console to be stopped, without spinning.
        self.exit_event.wait()


def console_driver(chosen: type[Driver]) -> type[Driver]:
    """The driver the console runs with: ours where Textual would use its Linux terminal
    driver, Textual's choice otherwise (the web driver under netcon serve, tests)."""
    return TerminalDriver if chosen is LinuxDriver else chosen
