"""L1 (in-process) in front of L2 (shared, e.g. Redis), with per-level hit/miss counting.

When L2 cannot be reached the cache degrades instead of failing the request: reads and
writes go to L1 only, L2 is skipped for `retry_s` and then probed again, and the change of
state is logged once (not per request) and shown by the `novarank_cache_l2_up` gauge."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import TypeVar

from novarank.online.health import StoreHealth
from novarank.online.metrics import ServiceMetrics
from novarank.stores.cache import Cache, MemoryCache

T = TypeVar("T")


class TieredCache:
    """Reads L1, then L2 (and fills L1 from it); writes both. `l2` may be None."""

    def __init__(self, l1: MemoryCache, l2: Cache | None, metrics: ServiceMetrics,
                 retry_s: float = 1.0) -> None:
        self.l1, self.l2, self.metrics = l1, l2, metrics
        self.health = StoreHealth("L2 cache", metrics, metrics.l2_up if l2 is not None
                                  else None, "serving from L1 and ranking locally", retry_s)
        if l2 is None:
            metrics.l2_up.set(0.0)

    @property
    def degraded(self) -> bool:
        return not self.health.up

    def _l2(self, op: str, call: Callable[[Cache], T], default: T) -> T:
        """One L2 operation through the store's health gate (skipped while L2 is down)."""
        l2 = self.l2
        if l2 is None:
            return default
        return self.health.call(op, lambda: call(l2), default)

    def get_l1(self, key: str) -> bytes | None:
        hit = self.l1.get_many([key])[0]
        self.metrics.of(self.metrics.cache, "l1", "hit" if hit is not None else "miss").inc()
        return hit

    def get_l2(self, key: str, ttl_s: float) -> bytes | None:
        if self.l2 is None:
            return None
        hit = self._l2("get", lambda c: c.get_many([key])[0], None)
        self.metrics.of(self.metrics.cache, "l2", "hit" if hit is not None else "miss").inc()
        if hit is not None:
            self.l1.set_many({key: hit}, ttl_s)
        return hit

    def get(self, key: str, ttl_s: float) -> tuple[bytes | None, str]:
        """(value, level) where level is 'l1', 'l2' or 'miss'."""
        hit = self.get_l1(key)
        if hit is not None:
            return hit, "l1"
        hit = self.get_l2(key, ttl_s)
        return (hit, "l2") if hit is not None else (None, "miss")

    def set(self, items: Mapping[str, bytes], ttl_s: float) -> None:
        self.l1.set_many(items, ttl_s)
        self._l2("set", lambda c: c.set_many(items, ttl_s), None)

    def delete(self, keys: list[str]) -> None:
        self.l1.delete(keys)
        self._l2("delete", lambda c: c.delete(keys), None)

    def observe(self) -> None:
        self.metrics.cache_evictions.set(self.l1.evictions)
        self.metrics.cache_bytes.set(self.l1.bytes_used)
        self.metrics.cache_entries.set(len(self.l1))
