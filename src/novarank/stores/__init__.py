"""Narrow storage interfaces, one per role, each with an embedded and a scale-out backend.

cache    derived and purgeable (memory TTL LRU | Redis)
counters live engagement for trending (memory | Redis)
state    source of truth for catalog upserts, engagement, toggles (SQLite | PostgreSQL)
Backends are chosen by URL scheme in `factory.py`.
"""

from novarank.stores.factory import open_cache, open_counters, open_state

__all__ = ["open_cache", "open_counters", "open_state"]
