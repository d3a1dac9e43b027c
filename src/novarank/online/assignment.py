"""Deterministic experiment assignment: hash(salt, user) -> bucket -> variant."""

from __future__ import annotations

import functools
import hashlib
from collections.abc import Mapping

from novarank.errors import ConfigError

BUCKETS = 10_000  # basis points: a split of 33.33% is representable


@functools.lru_cache(maxsize=65_536)  # every feed asks twice (variant, canary share)
def bucket_of(salt: str, user_id: str, buckets: int = BUCKETS) -> int:
    """Stable across processes, machines and Python versions (sha256, not hash())."""
    digest = hashlib.sha256(f"{salt}:{user_id}".encode()).digest()
    return int.from_bytes(digest[:8], "big") % buckets


class Splitter:
    """Maps buckets to variants by a split in percent, e.g. {"control": 20, "a": 40, "b": 40}."""

    def __init__(self, split: Mapping[str, float], salt: str) -> None:
        if not split:
            raise ConfigError("experiment split: at least one variant is required")
        bad = {k: v for k, v in split.items() if v < 0}
        if bad:
            raise ConfigError(f"experiment split: shares must be >= 0, got {bad}")
        total = sum(split.values())
        if abs(total - 100.0) > 1e-6:
            raise ConfigError(f"experiment split: shares must add up to 100, got {total:g}")
        self.split = dict(split)
        self.salt = salt
        self._bounds: list[tuple[int, str]] = []
        acc = 0.0
        for variant, share in self.split.items():
            acc += share
            self._bounds.append((round(acc * BUCKETS / 100), variant))

    def assign(self, user_id: str) -> tuple[str, int]:
        b = bucket_of(self.salt, user_id)
        for bound, variant in self._bounds:
            if b < bound:
                return variant, b
        return self._bounds[-1][1], b
