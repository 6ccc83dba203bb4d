"""The ctrl+p palette: every view, every action that applies here, and the themes.

Actions are read from the main screen's bindings through its ``check_action``, so the
palette offers exactly what the keys offer (nothing that changes state in read-only
mode).
"""

from __future__ import annotations

from collections.abc import Callable
from functools import partial
from typing import TYPE_CHECKING

from textual.command import DiscoveryHit, Hit, Hits, Provider

from tui.screens.resources import RESOURCES

if TYPE_CHECKING:
    from tui.app import NetconApp
    from tui.screens.main import MainScreen


class NetconCommands(Provider):
    def _commands(self) -> list[tuple[str, Callable[[], object], str]]:
        app: NetconApp = self.app  # type: ignore[assignment]
        main: MainScreen = app.main
        commands: list[tuple[str, Callable[[], object], str]] = []
        for resource in RESOURCES.values():
            commands.append(
                (
                    f"View: {resource.title}",
                    partial(main.switch_to, resource),
                    f":{resource.aliases[0]}  ({', '.join(resource.aliases[1:3])})",
                )
            )
        seen: set[str] = set()
        for bindings in main._bindings.key_to_bindings.values():
            for binding in bindings:
                action = binding.action
                if action in seen or action in ("command_line", "filter", "back", "drill"):
                    continue
                if main.check_action(action, ()) is not True:
                    continue
                seen.add(action)
                commands.append(
                    (
                        f"{main.state.resource.title}: {binding.description}"
                        if action in main.MUTATING
                        else binding.description,
                        partial(main.run_action, action),
                        f"key {app.get_key_display(binding)}",
                    )
                )
        for theme in sorted(app.available_themes):
            commands.append(
                (f"Theme: {theme}", partial(setattr, app, "theme", theme), "switch colours")
            )
        return commands

    async def discover(self) -> Hits:
        for text, run, help_text in self._commands():
            yield DiscoveryHit(text, run, help=help_text)

    async def search(self, query: str) -> Hits:
        matcher = self.matcher(query)
        for text, run, help_text in self._commands():
            score = matcher.match(text)
            if score > 0:
                yield Hit(score, matcher.highlight(text), run, help=help_text)
