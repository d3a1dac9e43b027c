"""A bounded native heap for the server process.

glibc's malloc gives threads that allocate their own arenas (up to eight per core). With a
thread pool of forty the arenas fragment, and RSS keeps growing long after the caches are
full: in `bench/bench_soak.py` it grew twice as fast after L1 filled up with the default
arenas as with two. The server caps them at start (`malloc_arenas`), before its threads
exist. `MALLOC_ARENA_MAX` in the environment still wins, and on a libc other than glibc
this does nothing.
"""

from __future__ import annotations

import ctypes
import logging
import os

log = logging.getLogger("novarank.memory")
M_ARENA_MAX = -8  # glibc's mallopt parameter number


def cap_arenas(n: int) -> bool:
    """Cap glibc malloc arenas at `n` (0: leave glibc's default). True when applied."""
    if n <= 0 or os.environ.get("MALLOC_ARENA_MAX"):
        return False
    try:
        libc = ctypes.CDLL("libc.so.6")
    except OSError:
        return False  # not glibc (musl, macOS): nothing to cap
    applied = bool(libc.mallopt(M_ARENA_MAX, n))
    if applied:
        log.info("malloc arenas capped at %d (NOVARANK_MALLOC_ARENAS)", n)
    return applied
