"""Pick a backend by URL scheme: memory://, redis://, sqlite:///path, postgresql://, file://."""

from __future__ import annotations

from urllib.parse import urlparse

from novarank.errors import ConfigError
from novarank.stores.cache import Cache, MemoryCache, RedisCache
from novarank.stores.counters import Counters, MemoryCounters, RedisCounters
from novarank.stores.state import PostgresStateStore, SQLiteStateStore, StateStore


def _scheme(url: str, setting: str, allowed: tuple[str, ...]) -> str:
    scheme = urlparse(url).scheme
    if scheme not in allowed:
        raise ConfigError(f"{setting}: unsupported URL scheme '{scheme}' in {url!r} "
                          f"(allowed: {', '.join(s + '://' for s in allowed)})")
    return scheme


def open_cache(url: str, *, max_entries: int = 200_000, max_bytes: int = 256 << 20,
               prefix: str = "nr:") -> Cache:
    if _scheme(url, "cache_url", ("memory", "redis", "rediss")) == "memory":
        return MemoryCache(max_entries=max_entries, max_bytes=max_bytes)
    return RedisCache(url, prefix=prefix)


def open_counters(url: str, prefix: str = "nr:") -> Counters:
    if _scheme(url, "counters_url", ("memory", "redis", "rediss")) == "memory":
        return MemoryCounters()
    return RedisCounters(url, prefix=prefix + "trend:")


def open_state(url: str) -> StateStore:
    scheme = _scheme(url, "state_url", ("sqlite", "postgresql", "postgres"))
    if scheme == "sqlite":
        path = url[len("sqlite://"):]
        path = path[1:] if path.startswith("/") and not path.startswith("//") else path
        return SQLiteStateStore(path or ":memory:")
    return PostgresStateStore(url)

