"""Errors the service raises; each renders as one line that names the field and the rule."""

from __future__ import annotations


class NetconError(Exception):
    """Base of every error the core raises on purpose.

    ``exit_code`` follows the command line's contract: 2 for a request the core refuses
    (bad input, unknown names, conflicts, quotas), 1 for a failure of the host, the
    database or an exhausted pool.
    """

    exit_code = 1
    # The input a refusal is about, when there is one (a script reads it under --json).
    field: str | None = None

    def __init__(self, message: str) -> None:
        # One line, always: a message is shown on stderr and in a console notification.
        super().__init__(" ".join(message.split()))

    @property
    def message(self) -> str:
        return str(self.args[0])

    @property
    def rule(self) -> str:
        """The message without the field it names."""
        prefix = f"{self.field}: "
        text = self.message
        return text[len(prefix) :] if self.field and text.startswith(prefix) else text


class InvalidInput(NetconError):
    exit_code = 2

    def __init__(self, field: str, rule: str) -> None:
        self.field = field
        super().__init__(f"{field}: {rule}")


class NotFound(NetconError):
    exit_code = 2

    def __init__(self, field: str, rule: str) -> None:
        self.field = field
        super().__init__(f"{field}: {rule}")


class Conflict(NetconError):
    """The request is well formed but the current state forbids it."""

    exit_code = 2

    def __init__(self, field: str, rule: str) -> None:
        self.field = field
        super().__init__(f"{field}: {rule}")


class QuotaExceeded(NetconError):
    exit_code = 2


class Exhausted(NetconError):
    """A pool has nothing left to hand out."""


class NoMoreFixedIps(Exhausted):
    def __init__(self, network: str) -> None:
        super().__init__(f"no more fixed IPs in network {network}")


class NoMoreNetworks(Exhausted):
    def __init__(self, project: str) -> None:
        super().__init__(
            f"no more networks for project {project}: every VLAN network is taken; "
            "create more with 'netcon network create'"
        )


class NoMoreFloatingIps(Exhausted):
    def __init__(self, pool: str) -> None:
        super().__init__(f"no more floating IPs in pool {pool}")


class HostError(NetconError):
    """The host could not be made to match the database."""


class HeldBack(HostError):
    """An apply that carried out all of its plan but the networks its problems hold back
    (each problem concerns one network): the rest is on the host, the problems stand."""

    def __init__(self, message: str, problems: tuple[str, ...] = (), applied: int = 0) -> None:
        self.problems = problems
        self.applied = applied  # the operations carried out
        super().__init__(message)


class DatabaseError(NetconError):
    """The database refused or could not be reached."""

    def __init__(self, message: str, *, field: str | None = None) -> None:
        # A refusal that is about the database given (--db) names it, for scripts.
        self.field = field
        super().__init__(message)


class DatabaseUnreachable(DatabaseError):
    """The database server did not answer: worth trying again later, unlike a refusal."""
