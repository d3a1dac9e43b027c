"""Key/value cache: an in-process TTL LRU bounded by entries and bytes, or Redis."""

from __future__ import annotations

import threading
import time
from collections.abc import Mapping, Sequence
from typing import Protocol

from cachetools import LRUCache

from novarank.stores.unavailable import unavailable_on_error


class Cache(Protocol):
    """Derived data only: anything here can be purged and rebuilt."""

    name: str

    def get_many(self, keys: Sequence[str]) -> list[bytes | None]: ...
    def set_many(self, items: Mapping[str, bytes], ttl_s: float) -> None: ...
    def delete(self, keys: Sequence[str]) -> None: ...
    def incr(self, key: str) -> int: ...
    def ping(self) -> bool: ...
    def close(self) -> None: ...


# What an entry costs beyond its value's bytes: the key string, the tuple, the bytes header
# and the cache's own bookkeeping (measured with tracemalloc: ~380 B for a feed key of ~90
# characters; tests/test_stores.py checks it stays within this).
ENTRY_OVERHEAD = 400


Entry = tuple[bytes, float]  # the value, when it expires (time.monotonic)


def _entry_size(entry: Entry) -> int:
    return len(entry[0]) + ENTRY_OVERHEAD


class _Evicting(LRUCache[str, Entry]):
    """LRUCache that counts what it evicts for capacity (not expiry)."""

    def __init__(self, maxsize: int) -> None:
        super().__init__(maxsize, getsizeof=_entry_size)
        self.evictions = 0

    def popitem(self):  # type: ignore[no-untyped-def]
        self.evictions += 1
        return super().popitem()


class MemoryCache:
    """In-process LRU with per-entry TTL, bounded both by entry count and by value bytes.

    An entry is a (bytes, expires at) tuple, which the garbage collector stops tracking
    once it has seen it, so a full collection does not walk the cache. (A TLRUCache keeps
    a tracked object per entry for its expiry heap, which every full collection walks
    while requests wait.) An expired entry is dropped when it is read, or evicted as the
    least recently used."""

    name = "memory"

    def __init__(self, max_entries: int = 200_000, max_bytes: int = 256 << 20) -> None:
        self.max_entries = max_entries
        self._data = _Evicting(max_bytes)
        self._counters: dict[str, int] = {}
        self._lock = threading.Lock()

    def get_many(self, keys: Sequence[str]) -> list[bytes | None]:
        now = time.monotonic()
        with self._lock:
            out: list[bytes | None] = []
            for k in keys:
                hit = self._live(k, now)
                out.append(hit[0] if hit is not None else None)
            return out

    def entry(self, key: str) -> Entry | None:
        """The live entry itself (a read, as `get_many`): the same object until the key is
        set again, deleted, expired or evicted, so a caller holding what it derived from
        an entry can tell by identity whether that still stands."""
        with self._lock:
            return self._live(key, time.monotonic())

    def _live(self, key: str, now: float) -> Entry | None:
        hit = self._data.get(key)
        if hit is not None and hit[1] <= now:
            del self._data[key]  # expired
            return None
        return hit

    def set_many(self, items: Mapping[str, bytes], ttl_s: float) -> None:
        expires = time.monotonic() + ttl_s
        with self._lock:
            for k, v in items.items():
                if len(v) + ENTRY_OVERHEAD > self._data.maxsize:
                    continue  # larger than the whole cache: never stored
                self._data[k] = (v, expires)
                while len(self._data) > self.max_entries:
                    self._data.popitem()

    def delete(self, keys: Sequence[str]) -> None:
        with self._lock:
            for k in keys:
                self._data.pop(k, None)
                self._counters.pop(k, None)

    def incr(self, key: str) -> int:
        with self._lock:
            self._counters[key] = self._counters.get(key, 0) + 1
            return self._counters[key]

    def ping(self) -> bool:
        return True

    def clear(self) -> None:
        with self._lock:
            self._data.clear()

    def close(self) -> None:
        self.clear()

    # ---- introspection for metrics ------------------------------------------------------
    @property
    def evictions(self) -> int:
        return self._data.evictions

    @property
    def bytes_used(self) -> int:
        return int(self._data.currsize)

    def __len__(self) -> int:
        return len(self._data)


class RedisCache:
    """Shared L2: MGET for reads (one round trip), pipelined SET PX for writes."""

    name = "redis"

    def __init__(self, url: str, prefix: str = "nr:") -> None:
        import redis

        self._r = redis.Redis.from_url(url, socket_timeout=2.0, socket_connect_timeout=1.0)
        self.prefix = prefix

    def get_many(self, keys: Sequence[str]) -> list[bytes | None]:
        if not keys:
            return []
        with unavailable_on_error("L2 cache"):
            return self._r.mget([self.prefix + k for k in keys])

    def set_many(self, items: Mapping[str, bytes], ttl_s: float) -> None:
        if not items:
            return
        with unavailable_on_error("L2 cache"):
            pipe = self._r.pipeline(transaction=False)
            for k, v in items.items():
                pipe.set(self.prefix + k, v, px=max(1, int(ttl_s * 1000)))
            pipe.execute()

    def delete(self, keys: Sequence[str]) -> None:
        if keys:
            with unavailable_on_error("L2 cache"):
                self._r.delete(*[self.prefix + k for k in keys])

    def incr(self, key: str) -> int:
        return int(self._r.incr(self.prefix + key))

    def ping(self) -> bool:
        try:
            return bool(self._r.ping())
        except Exception:
            return False

    def close(self) -> None:
        self._r.close()

    def publish(self, channel: str, message: str) -> None:
        with unavailable_on_error("L2 cache"):
            self._r.publish(channel, message)

    def subscribe(self, channel: str):  # type: ignore[no-untyped-def]
        """A redis-py PubSub on `channel` (poll it with get_message)."""
        pubsub = self._r.pubsub(ignore_subscribe_messages=True)
        pubsub.subscribe(channel)
        return pubsub

    def flush_prefix(self) -> int:
        """Delete every key under this cache's prefix (tests and `cache purge`)."""
        n = 0
        for key in self._r.scan_iter(match=self.prefix + "*", count=1000):
            n += self._r.delete(key)
        return n
