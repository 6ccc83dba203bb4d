"""The collector's full passes kept short while the console runs.

What the console allocates to start (Textual, the service and its database layer, the
first rows) lives as long as the console does, yet each full pass of the garbage
collector walks all of it again: one such pass took 60 to 200 ms in the middle of a
burst of typed keys. Once started, the console moves what it holds out of the
collector's sight (``gc.freeze``), so that a pass walks only what came after; it puts
it back when it stops, so that a process that runs the console more than once (tests,
a script) frees what each run left when the next one starts.
"""

from __future__ import annotations

import gc


def settle() -> None:
    """The console has started: what it holds now is kept for as long as it runs. What
    it no longer holds (and what a run before it left) is collected first, once, while
    the admin reads the first rows; frozen, it would never be."""
    gc.collect()
    gc.freeze()


def release() -> None:
    """The console has stopped: what it held may be collected again."""
    gc.unfreeze()
