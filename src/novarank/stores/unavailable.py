"""Redis errors as StoreUnavailable: the one error the service degrades on (a refused,
reset or timed-out connection), whichever Redis-backed store raised it."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from novarank.errors import StoreUnavailable


@contextmanager
def unavailable_on_error(what: str) -> Iterator[None]:
    import redis

    try:
        yield
    except (redis.RedisError, OSError) as exc:
        raise StoreUnavailable(f"{what}: {type(exc).__name__}: {exc}") from exc
