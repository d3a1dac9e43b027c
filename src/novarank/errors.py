"""The exception hierarchy. Callers catch `NovarankError`; the HTTP layer maps subclasses."""

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


class ConfigError(NovarankError):
    """A setting or argument breaks a rule; the message names it."""


class InputError(NovarankError):
    """A request argument breaks a rule; `field` names it (mapped to HTTP 422)."""

    status = 422

    def __init__(self, field: str, message: str) -> None:
        self.field = field
        super().__init__(f"{field}: {message}")


class NotFoundError(InputError):
    status = 404


class TooLargeError(InputError):
    status = 413


class AuthError(NovarankError):
    """Missing or wrong admin token (401), or admin API disabled (403)."""

    def __init__(self, message: str, status: int = 401) -> None:
        self.status = status
        super().__init__(message)
