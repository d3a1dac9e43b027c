"""L1 (in-process) in front of L2 (shared, e.g. Redis), with per-level hit/miss counting."""

from __future__ import annotations

from collections.abc import Mapping

from novarank.online.metrics import ServiceMetrics
from novarank.stores.cache import Cache, MemoryCache


class TieredCache:
    """Reads L1, then L2 (and fills L1 from it); writes both. `l2` may be None."""

    def __init__(self, l1: MemoryCache, l2: Cache | None, metrics: ServiceMetrics) -> None:
        self.l1, self.l2, self.metrics = l1, l2, metrics

    def get_l1(self, key: str) -> bytes | None:
        hit = self.l1.get_many([key])[0]
        self.metrics.of(self.metrics.cache, "l1", "hit" if hit is not None else "miss").inc()
        return hit

    def get_l2(self, key: str, ttl_s: float) -> bytes | None:
        if self.l2 is None:
            return None
        hit = self.l2.get_many([key])[0]
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
        if self.l2 is not None:
            self.l2.set_many(items, ttl_s)

    def delete(self, keys: list[str]) -> None:
        self.l1.delete(keys)
        if self.l2 is not None:
            self.l2.delete(keys)

    def observe(self) -> None:
        self.metrics.cache_evictions.set(self.l1.evictions)
        self.metrics.cache_bytes.set(self.l1.bytes_used)
        self.metrics.cache_entries.set(len(self.l1))
