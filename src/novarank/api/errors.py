"""Domain errors to HTTP: the one place a status is chosen. The service raises what went
wrong (errors.py); this decides what a client is told."""

from __future__ import annotations

from novarank.errors import (
    AuthError,
    ForbiddenError,
    InputError,
    NotFoundError,
    NovarankError,
    RateLimited,
    StoreUnavailable,
    TooLargeError,
)
from novarank.online.releases import ReleaseFailure

# most specific first: the first class an error is an instance of wins
STATUS: tuple[tuple[type[NovarankError], int, str], ...] = (
    (NotFoundError, 404, "not_found"),
    (TooLargeError, 413, "too_large"),
    (InputError, 422, "invalid"),
    (ForbiddenError, 403, "forbidden"),
    (AuthError, 401, "unauthorized"),
    (ReleaseFailure, 500, "internal"),
    (StoreUnavailable, 503, "unavailable"),
    (RateLimited, 429, "rate_limited"),  # retry: nothing of the request was kept
)


def http_status(exc: NovarankError) -> tuple[int, str]:
    """(status, code) for a domain error; anything else of ours is the server's fault."""
    for kind, status, code in STATUS:
        if isinstance(exc, kind):
            return status, code
    return 500, "server_error"
