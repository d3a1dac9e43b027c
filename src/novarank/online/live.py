"""The catalog as it changes while serving: upserts from the state store and engagement
from the live counters. Each change builds a new immutable catalog snapshot and swaps it
into every loaded release, so a request reads one consistent view from start to end."""

from __future__ import annotations

import threading
import time

import numpy as np

from novarank.ids import new_id
from novarank.online.context import ServiceContext
from novarank.online.health import StoreHealth
from novarank.online.influence import InfluenceCap
from novarank.online.releases import Served
from novarank.ranking.recommender import Recommender
from novarank.stores.counters import Counters
from novarank.stores.state import CatalogItem

DAY = 86_400
CATALOG_LOOKBACK = 1_000  # re-read recent catalog changes: concurrent writers may commit late


def quality_prior(rec: Recommender) -> float:
    """The quality an item gets before it has any engagement: the release's mean."""
    m = rec.model
    return float(np.mean(m.quality)) if m.n_items else 0.5


class LiveCatalog:
    def __init__(self, ctx: ServiceContext, counters: Counters) -> None:
        self.ctx, self.counters = ctx, counters
        self.influence = InfluenceCap()  # one user's bound on live trending
        self.health = StoreHealth("trending counters", ctx.metrics,
                                  degraded="trending without live engagement")
        self._swap = threading.Lock()  # one writer at a time builds the next snapshot
        self._trending_at = 0.0

    def prepare(self, served: Served) -> None:
        """Bring a newly loaded release live before it serves anyone: uploads and trending
        as the stable release has them."""
        self.catch_up(served)
        self.trend(served, int(self.ctx.clock()))

    def sync(self, loaded: list[Served]) -> None:
        """Apply catalog upserts made anywhere; re-read trending when it is due."""
        for served in loaded:
            self.catch_up(served)
        if time.monotonic() - self._trending_at >= self.ctx.settings.trending_refresh_s:
            self.refresh_trending(loaded)

    def catch_up(self, served: Served) -> None:
        """Apply the catalog upserts this release's catalog has not seen yet."""
        cat = served.rec.catalog
        changed = [it for it in self.ctx.state.items_since(max(0, cat.version
                                                               - CATALOG_LOOKBACK))
                   if it.seq > cat.version or cat.index.get(it.item_id) is None]
        if changed:
            with self._swap:
                served.rec.catalog = served.rec.catalog.with_upserts(
                    changed, quality_prior(served.rec))

    def upsert(self, item: CatalogItem, loaded: list[Served]) -> int:
        """Store the item, then show it at once in every loaded release (other replicas
        catch up on their next sync). Returns its catalog sequence number."""
        seq = self.ctx.state.upsert_item(item)
        stored = CatalogItem(**{**item.__dict__, "seq": seq})
        with self._swap:
            for served in loaded:
                served.rec.catalog = served.rec.catalog.with_upserts(
                    [stored], quality_prior(served.rec))
        return seq

    def live_counts(self, now: int, half_life_s: float, horizon_s: int
                    ) -> dict[str, float] | None:
        """Live engagement per item, decayed; None while the counters are down (trending
        then keeps what was last read)."""
        return self.health.call(
            "read", lambda: self.counters.decayed(now, half_life_s, horizon_s), None)

    def count(self, weights: dict[str, float], now: int) -> None:
        """Add to the live counters; while they are down the addition is skipped and
        counted (they are derived: the state store holds every accepted event)."""
        self.health.call("add", lambda: self.counters.add(weights, now), None)

    def trend(self, served: Served, now: int) -> None:
        """The release's trending decayed to now, plus the live counters (kept as it was
        while the counters cannot be read)."""
        hl = served.rec.ranker.trending_half_life_days * DAY
        live = self.live_counts(now, hl, int(4 * hl))
        if live is None:
            return
        read = new_id()[:16]
        with self._swap:
            served.rec.catalog = served.rec.catalog_at(now, live, read)
        if self.ctx.settings.exploration_epsilon > 0:
            # what a replay of a window ranked with this read needs (its ranking event
            # names the read): one event per release and refresh, with exploration on
            items = sorted(live)
            self.ctx.events.emit("trending", {"release": served.version, "read_id": read,
                                              "at": now, "items": items,
                                              "counts": [float(live[i]) for i in items]})

    def refresh_trending(self, loaded: list[Served]) -> None:
        now = int(self.ctx.clock())
        for served in loaded:
            self.trend(served, now)
        self._trending_at = time.monotonic()
