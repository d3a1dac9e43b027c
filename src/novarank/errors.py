"""The exception hierarchy. Callers catch `NovarankError`; the HTTP layer (api/errors.py)
maps each kind to a status. Nothing here knows about HTTP."""

from __future__ import annotations


class NovarankError(Exception):
    """Base class for every error novarank raises on purpose."""


class DataError(NovarankError):
    """Input data is malformed: names the file, line and field when it can."""

    def __init__(
        self,
        message: str,
        *,
        path: str | None = None,
        line: int | None = None,
        field: str | None = None,
    ) -> None:
        self.path, self.line, self.field = path, line, field
        where = ", ".join(
            part
            for part in (
                f"file {path}" if path else "",
                f"line {line}" if line is not None else "",
                f"field '{field}'" if field else "",
            )
            if part
        )
        super().__init__(f"{where}: {message}" if where else message)


class ReleaseError(NovarankError):
    """A release directory is missing, incomplete, altered or unreadable."""


class StoreUnavailable(NovarankError):
    """A shared store (Redis, PostgreSQL) cannot be reached right now: callers degrade
    (serve from L1, rank locally, skip a derived counter) instead of failing the request."""


class ConfigError(NovarankError):
    """A setting or argument breaks a rule; the message names it."""


class InputError(NovarankError):
    """A request argument breaks a rule; `field` names it."""

    def __init__(self, field: str, message: str) -> None:
        self.field = field
        super().__init__(f"{field}: {message}")


class NotFoundError(InputError):
    """The argument names something that does not exist (an item, a cursor's snapshot)."""


class TooLargeError(InputError):
    """The request carries more than a stated limit."""


class AuthError(NovarankError):
    """Missing or wrong credentials."""


class ForbiddenError(AuthError):
    """The credentials are fine but the operation is not allowed (admin API disabled)."""


class RateLimited(NovarankError):
    """A key spent its budget for a kind of work; `retry_after` says when there is more."""

    def __init__(self, kind: str, retry_after: float, message: str) -> None:
        self.kind, self.retry_after = kind, retry_after
        super().__init__(message)
