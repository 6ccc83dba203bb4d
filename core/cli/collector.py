"""The cycle collector while a command starts.

A command allocates a few hundred thousand objects as it starts (modules, classes,
SQLAlchemy's constructs) that live as long as it does, and the collector went over
them again and again: a tenth of the CPU of a no-change `host apply`. A command runs
without it; one that runs on (the agent, `serve`, the console, `batch`) resumes it
once started, with what start-up made kept out of every later collection.
"""

from __future__ import annotations

import gc


def defer() -> None:
    gc.disable()


def resume() -> None:
    """Collect from now on, leaving out everything made so far (it lives as long as
    the process)."""
    gc.freeze()
    gc.enable()


def spare_exit() -> None:
    """For a process about to end: the interpreter's last collection, as it shuts
    down, leaves out what the command made (it all goes with the process). Walking it
    took some 70 ms after a `host apply`."""
    gc.freeze()
