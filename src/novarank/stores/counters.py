"""Live engagement counters for trending, in hourly buckets so they can decay."""

from __future__ import annotations

import math
import threading
from collections import defaultdict
from collections.abc import Mapping
from typing import Protocol

from novarank.stores.unavailable import unavailable_on_error

HOUR = 3_600


class Counters(Protocol):
    name: str

    def add(self, weights: Mapping[str, float], ts: int) -> None: ...
    def decayed(self, now: int, half_life_s: float, horizon_s: int) -> dict[str, float]: ...
    def forget(self) -> None: ...


def _decay(bucket: int, now: int, half_life_s: float) -> float:
    age = max(0.0, now - (bucket * HOUR + HOUR / 2))
    return math.exp2(-age / half_life_s)


class MemoryCounters:
    name = "memory"

    def __init__(self) -> None:
        self._buckets: dict[int, dict[str, float]] = defaultdict(lambda: defaultdict(float))
        self._lock = threading.Lock()

    def add(self, weights: Mapping[str, float], ts: int) -> None:
        with self._lock:
            b = self._buckets[ts // HOUR]
            for item, w in weights.items():
                b[item] += w

    def decayed(self, now: int, half_life_s: float, horizon_s: int) -> dict[str, float]:
        out: dict[str, float] = defaultdict(float)
        oldest = (now - horizon_s) // HOUR
        with self._lock:
            for bucket in [b for b in self._buckets if b < oldest]:
                del self._buckets[bucket]
            for bucket, items in self._buckets.items():
                f = _decay(bucket, now, half_life_s)
                for item, w in items.items():
                    out[item] += w * f
        return dict(out)

    def forget(self) -> None:
        with self._lock:
            self._buckets.clear()


class RedisCounters:
    """One Redis hash per hour (`HINCRBYFLOAT`), expiring after the horizon."""

    name = "redis"

    def __init__(self, url: str, prefix: str = "nr:trend:", horizon_s: int = 14 * 86_400) -> None:
        import redis

        self._r = redis.Redis.from_url(url, socket_timeout=2.0, socket_connect_timeout=1.0)
        self.prefix, self.horizon_s = prefix, horizon_s

    def add(self, weights: Mapping[str, float], ts: int) -> None:
        key = f"{self.prefix}{ts // HOUR}"
        with unavailable_on_error("trending counters"):
            pipe = self._r.pipeline(transaction=False)
            for item, w in weights.items():
                pipe.hincrbyfloat(key, item, w)
            pipe.expire(key, self.horizon_s + HOUR)
            pipe.execute()

    def decayed(self, now: int, half_life_s: float, horizon_s: int) -> dict[str, float]:
        first, last = (now - horizon_s) // HOUR, now // HOUR
        buckets = list(range(first, last + 1))
        with unavailable_on_error("trending counters"):
            pipe = self._r.pipeline(transaction=False)
            for b in buckets:
                pipe.hgetall(f"{self.prefix}{b}")
            fetched = pipe.execute()
        out: dict[str, float] = defaultdict(float)
        for b, items in zip(buckets, fetched, strict=True):
            if items:
                f = _decay(b, now, half_life_s)
                for item, w in items.items():
                    out[item.decode()] += float(w) * f
        return dict(out)

    def forget(self) -> None:
        for key in self._r.scan_iter(match=self.prefix + "*", count=1000):
            self._r.delete(key)
