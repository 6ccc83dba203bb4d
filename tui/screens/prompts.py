"""The main screen's answers to its two prompts: ``:`` + a view's name switches to it
(``:ctx`` to another database), ``/`` + text filters the rows as it is typed. Enter and
Esc are answered at once, and the focus is back on the table before the next typed key
is handed over."""

from __future__ import annotations

from typing import TYPE_CHECKING

from tui.screens import contexts
from tui.screens.state import matcher
from tui.views import resolve
from tui.views.base import Search
from tui.widgets.prompt import CommandPrompt, Prompt
from tui.widgets.virtual_table import ListSource

if TYPE_CHECKING:
    from tui.screens.frame import MainFrame


class PromptAnswers:
    def __init__(self, screen: MainFrame) -> None:
        self.screen = screen

    def any_open(self) -> bool:
        return any(prompt.is_open for prompt in self.screen.query(Prompt))

    def close(self, prompt: Prompt) -> None:
        """Close ``prompt`` and give the table the focus now, before the next key is
        read: a key typed right after Enter is meant for the table."""
        prompt.close()
        if not self.any_open():
            self.screen.set_focus(self.screen.table)

    def close_all(self) -> None:
        """Esc on the screen: close the prompts; closing the filter's drops the filter."""
        if self.screen.query_one("#filter", Prompt).is_open:
            self.set_filter("")
        for prompt in self.screen.query(Prompt):
            prompt.close()

    def submitted(self, prompt: Prompt, value: str) -> None:
        if prompt.id == "filter":
            self.set_filter(value)
            self.close(prompt)
        elif isinstance(prompt, CommandPrompt):
            self._command(prompt, value)

    def cancelled(self, prompt: Prompt) -> None:
        if prompt.id == "filter":
            self.set_filter("")
        self.close(prompt)

    def _command(self, prompt: CommandPrompt, value: str) -> None:
        screen = self.screen
        word = value.strip().lstrip(":")
        if not word:
            self.close(prompt)
            return
        if word.lower() in ("q", "quit"):
            screen.app.exit()
            return
        if word.split()[0].lower() == "ctx":
            self.close(prompt)
            contexts.command(screen, word[3:].strip())
            return
        spec = resolve(word)
        if spec is None:
            candidates = prompt.candidates()
            hint = f"; did you mean {', '.join(candidates[:4])}?" if candidates else (
                "; try :networks, :fip, :vpn (Tab completes)"
            )
            screen.notify(f"no view named {word!r}{hint}", severity="warning")
            return  # the prompt stays open with what was typed
        self.close(prompt)
        memory = screen.context.memory
        if memory is not None:
            prompt.history = memory.remember(spec.aliases[0])
        else:
            prompt.history = [*prompt.history, spec.aliases[0]]
        screen.switch_to(spec)

    def set_filter(self, typed: str) -> None:
        screen = self.screen
        state = screen.state
        typed = typed.strip()
        if typed == state.typed:
            return
        search = Search.parse(typed)
        state.typed = typed
        source = screen.table.source
        # A new filter puts the cursor on its first match.
        if isinstance(source, ListSource) and not state.spec.paged:
            source.apply(matcher(search), state.sort_column, state.sort_descending)
            screen.loader.show_source(source, None, 0)
        else:
            # A paged view filters in the database; the answer replaces the table.
            screen.loader.new_rows()
            screen.loader.reload(from_top=True)
        screen.show_crumbs()
