"""Discovery: trending, more-like-this, creators, search, an item, a user's history. All
read the stable release's current catalog snapshot once per call."""

from __future__ import annotations

import time
from collections import defaultdict

import numpy as np

from novarank.data.events import Event
from novarank.errors import InputError, NotFoundError
from novarank.ids import new_id
from novarank.online.audience import Audience
from novarank.online.context import ServiceContext
from novarank.online.follower import ReleaseFollower
from novarank.online.live import LiveCatalog
from novarank.online.requests import RequestLog, check_k
from novarank.online.results import (
    CreatorScore,
    CreatorsPage,
    History,
    HistoryEvent,
    Item,
    ItemStats,
    SearchItem,
    SearchPage,
    SimilarItem,
    SimilarPage,
    TrendingItem,
    TrendingPage,
)
from novarank.online.search import SearchIndex
from novarank.ranking.blend import blend, standardize
from novarank.stores.state import CatalogItem

HISTORY_LIMIT = 500  # most live events one history call returns
TRENDING_WINDOWS = {"1h": 3_600, "24h": 86_400, "7d": 7 * 86_400}


class Discovery:
    def __init__(self, ctx: ServiceContext, releases: ReleaseFollower, audience: Audience,
                 live: LiveCatalog, requests: RequestLog) -> None:
        self.ctx, self.releases, self.audience = ctx, releases, audience
        self.live, self.requests = live, requests
        self._search: tuple[np.ndarray, SearchIndex] | None = None

    def _check_k(self, k: int) -> None:
        check_k(k, self.ctx.settings.feed_window)

    def trending(self, window: str = "24h", k: int = 20) -> TrendingPage:
        self._check_k(k)
        if window not in TRENDING_WINDOWS:
            raise InputError("window", f"must be one of {list(TRENDING_WINDOWS)}, got '{window}'")
        t0 = time.perf_counter()
        seconds = TRENDING_WINDOWS[window]
        now = int(self.ctx.clock())
        cat = self.releases.rec.catalog
        live = self.live.live_counts(now, seconds / 2, seconds) or {}
        scores = np.zeros(cat.n_items, np.float32)
        for item_id, w in live.items():
            i = cat.index.get(item_id)
            if i is not None:
                scores[i] = w
        scores[~cat.available] = -1
        live_top = [i for i in np.argsort(-scores, kind="stable")[:k] if scores[i] > 0]
        rest = [i for i in cat.trending_order[: 2 * k] if cat.available[i] and i not in live_top]
        chosen = (live_top + rest)[:k]
        items = [TrendingItem(str(cat.item_ids[i]), str(cat.titles[i]),
                              round(float(scores[i] if scores[i] > 0 else cat.trending[i]), 5),
                              "live" if scores[i] > 0 else "release") for i in chosen]
        request_id = new_id()
        self.requests.observe("trending", "none", t0, k, len(items))
        self.requests.emit("trending", request_id, "", "", "none", k,
                           [it.item_id for it in items], t0)
        return TrendingPage(request_id, window, self.releases.release, items)

    def similar(self, item_id: str, k: int = 10) -> SimilarPage:
        self._check_k(k)
        rec = self.releases.rec
        cat, m = rec.catalog, rec.model
        i = cat.index.get(item_id)
        if i is None:
            raise NotFoundError("item_id", f"unknown item '{item_id}'")
        scores: dict[int, tuple[float, str]] = {}
        if i < m.n_items:
            s = m.item_item
            for j, v in zip(s.indices[s.indptr[i]: s.indptr[i + 1]].tolist(),
                            s.data[s.indptr[i]: s.indptr[i + 1]].tolist(), strict=True):
                scores[j] = (float(v), "co_engagement")
            if len(scores) < k:
                for j in rec.index.search(m.als_items[i], 3 * k).tolist():
                    scores.setdefault(j, (0.0, "embedding"))
        row = cat.facets[i]
        if row.nnz and len(scores) < k:
            sim = np.asarray(cat.facets @ row.T.toarray()).ravel()
            for j in np.argsort(-sim)[: 3 * k].tolist():
                if sim[j] > 0:
                    scores.setdefault(j, (0.0, "same_creator_or_tags"))
        ranked = [j for j, _ in sorted(scores.items(), key=lambda kv: -kv[1][0])
                  if j != i and cat.available[j]][:k]
        for j in cat.trending_order.tolist():  # backfill: always k when the catalog has them
            if len(ranked) >= k:
                break
            if j != i and cat.available[j] and j not in ranked:
                scores.setdefault(j, (0.0, "trending"))
                ranked.append(j)
        return SimilarPage(item_id, [SimilarItem(str(cat.item_ids[j]), str(cat.titles[j]),
                                                 round(scores[j][0], 5), scores[j][1])
                                     for j in ranked])

    def creators(self, user_id: str, k: int = 10) -> CreatorsPage:
        self._check_k(k)
        p = self.audience.profile(user_id)
        cat = p.catalog
        aff: dict[int, float] = defaultdict(float)
        for item, w in zip(p.recent.tolist(), p.recency.tolist(), strict=True):
            if cat.creators[item] >= 0:
                aff[int(cat.creators[item])] += w
        out = [(c, s, "affinity") for c, s in sorted(aff.items(), key=lambda kv: -kv[1])]
        seen = {c for c, _, _ in out}
        for i in cat.trending_order.tolist():  # backfill: creators of trending items
            if len(out) >= k:
                break
            c = int(cat.creators[i])
            if c >= 0 and c not in seen:
                seen.add(c)
                out.append((c, 0.0, "trending"))
        return CreatorsPage(user_id, p.cold, [
            CreatorScore(str(cat.creator_names[c]), round(s, 5), why) for c, s, why in out[:k]])

    def search(self, q: str, user_id: str | None = None, k: int = 10) -> SearchPage:
        self._check_k(k)
        q = q.strip()
        if not q or len(q) > 200:
            raise InputError("q", "must be 1 to 200 characters")
        t0 = time.perf_counter()
        served = self.releases.routing.stable
        cat = served.rec.catalog
        indexed = self._search
        # rebuilt when the titles change (an upsert), not when trending is refreshed
        if indexed is None or indexed[0] is not cat.titles:
            indexed = self._search = (cat.titles, SearchIndex(cat.titles, cat.tags))
        hits, text = indexed[1].search(q, 500)
        keep = cat.available[hits]
        hits, text = hits[keep], text[keep]
        score = standardize(text)
        personal = np.zeros(len(hits), np.float32)
        if user_id and len(hits) > 1:
            toggles = self.ctx.toggles.current()
            p = self.audience.profile(user_id, served)
            variant = self.audience.variant(user_id, None, toggles)
            comps = served.rec.components(p, hits, int(self.ctx.clock()))
            personal, _ = blend(served.rec.signals(comps),
                                self.audience.weights(variant, toggles, served))
            score = score + 0.5 * standardize(personal)
        order = np.argsort(-score, kind="stable")[:k]
        items = [SearchItem(str(cat.item_ids[hits[j]]), str(cat.titles[hits[j]]),
                            round(float(score[j]), 5), round(float(text[j]), 5),
                            round(float(personal[j]), 5)) for j in order]
        request_id = new_id()
        self.requests.observe("search", "none", t0, k, len(items))
        self.requests.emit("search", request_id, user_id or "", "", "none", k,
                           [it.item_id for it in items], t0)
        return SearchPage(request_id, q, user_id, items)

    # ---- items ----------------------------------------
    def get_item(self, item_id: str, catalog_seq: int | None = None) -> Item:
        cat = self.releases.rec.catalog
        i = cat.index.get(item_id)
        if i is None:
            raise NotFoundError("item_id", f"unknown item '{item_id}'")
        stats = self.ctx.state.item_stats(item_id)
        published = int(cat.published_at[i])
        c = int(cat.creators[i])
        return Item(item_id, str(cat.titles[i]), cat.creator_names[c] if c >= 0 else None,
                    [t for t in str(cat.tags[i]).split("|") if t],
                    published if published > np.iinfo(np.int64).min else None,
                    bool(cat.available[i]), i < cat.n_release,
                    ItemStats(round(float(cat.trending[i]), 5), round(float(cat.quality[i]), 5),
                              {Event(e).name.lower(): n for e, n in stats.items()}),
                    catalog_seq)

    def upsert_item(self, item: CatalogItem) -> Item:
        seq = self.live.upsert(item, self.releases.routing.loaded())
        return self.get_item(item.item_id, catalog_seq=seq)

    # ---- users ----------------------------------------
    def history(self, user_id: str, limit: int = 50) -> History:
        if not 1 <= limit <= HISTORY_LIMIT:
            raise InputError("limit", f"must be between 1 and {HISTORY_LIMIT}, got {limit}")
        live = self.ctx.state.history(user_id, limit)
        p = self.audience.profile(user_id)
        cat, m = p.catalog, self.releases.rec.model
        u = p.index
        return History(user_id, user_id in self.audience.forgotten,
                       [HistoryEvent(e.item_id, Event(e.event).name.lower(), e.value, e.ts)
                        for e in live],
                       0 if u is None else int(m.hist_indptr[u + 1] - m.hist_indptr[u]),
                       [str(cat.item_ids[i]) for i in p.recent[:20]])
