"""The ctrl+p palette: every view, every action that applies here, and the themes.

The entries come from the screen under the palette (:class:`PaletteSource`), so the
palette offers exactly what the keys offer, with the admin's keys, and nothing that
changes state in read-only mode.
"""

from __future__ import annotations

from functools import partial

from textual.command import DiscoveryHit, Hit, Hits, Provider

from tui.palette import PaletteEntry, PaletteSource


class NetconCommands(Provider):
    def entries(self) -> list[PaletteEntry]:
        entries: list[PaletteEntry] = []
        source = self.app.screen_stack[0] if self.app.screen_stack else None
        if isinstance(source, PaletteSource):
            entries += source.palette_entries()
        for theme in sorted(self.app.available_themes):
            entries.append(
                PaletteEntry(
                    f"Theme: {theme}", partial(setattr, self.app, "theme", theme),
                    "switch colours (kept for the next start)",
                )
            )
        return entries

    async def discover(self) -> Hits:
        for entry in self.entries():
            yield DiscoveryHit(entry.text, entry.run, help=entry.help)

    async def search(self, query: str) -> Hits:
        matcher = self.matcher(query)
        for entry in self.entries():
            score = matcher.match(entry.text)
            if score > 0:
                yield Hit(score, matcher.highlight(entry.text), entry.run, help=entry.help)
