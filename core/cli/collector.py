"""The cycle collector while a command starts.

A command allocates a few hundred thousand objects as it starts (modules, classes,
SQLAlchemy's constructs) that live as long as it does, and the collector went over
them again and again: a tenth of the CPU of a no-change `host apply`. A command runs
without it; one that runs on (the agent, `serve`, the console, `batch`) resumes it
once started, with what start-up made kept out of every later collection.

Python collects once more as it exits, collector off or not, over everything the
command made: a fifth of a no-change `host apply`. A process that ends with its command
puts all of it out of the collector's sight first (finish).
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


def finish() -> None:
    """The process ends with the command: what it made goes with the process, without
    the collection at exit walking it all. Files, sockets and the database are closed by
    their owners before this (the command's context closes the database), and at-exit
    handlers still run."""
    gc.freeze()
