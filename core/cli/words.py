"""Where the command word is in a command line."""

from __future__ import annotations


def command_index(words: list[str]) -> int | None:
    """Where the command word is: the first word that is neither an option nor the value
    of ``--db``; None when there is none."""
    skip = False
    for index, word in enumerate(words):
        if skip:
            skip = False
        elif word == "--db":
            skip = True
        elif word == "-" or not word.startswith("-"):
            return index
    return None
