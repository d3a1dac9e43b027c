"""Discovery calls of the service: trending, more-like-this, creators, search, items and
users. A mixin of RankingService: it uses the service's recommender, stores and caches."""

from __future__ import annotations

import time
from collections import defaultdict
from typing import Any

import numpy as np

from novarank.data.events import Event
from novarank.errors import InputError, NotFoundError
from novarank.online.ids import new_id
from novarank.online.search import SearchIndex
from novarank.ranking.blend import blend, standardize
from novarank.stores.state import CatalogItem

HISTORY_LIMIT = 500  # most live events one history call returns
TRENDING_WINDOWS = {"1h": 3_600, "24h": 86_400, "7d": 7 * 86_400}


class DiscoveryCalls:
    # ---- other product calls ----------------------------------------
    def trending(self, window: str = "24h", k: int = 20) -> dict[str, Any]:
        self._check_k(k)
        if window not in TRENDING_WINDOWS:
            raise InputError("window", f"must be one of {list(TRENDING_WINDOWS)}, got '{window}'")
        t0 = time.perf_counter()
        seconds = TRENDING_WINDOWS[window]
        now = int(time.time())
        cat = self.rec.catalog
        live = self.live_counts(now, seconds / 2, seconds) or {}
        scores = np.zeros(cat.n_items, np.float32)
        for item_id, w in live.items():
            i = cat.index.get(item_id)
            if i is not None:
                scores[i] = w
        scores[~cat.available] = -1
        live_top = [i for i in np.argsort(-scores, kind="stable")[:k] if scores[i] > 0]
        rest = [i for i in cat.trending_order[: 2 * k] if cat.available[i] and i not in live_top]
        chosen = (live_top + rest)[:k]
        items = [{"item_id": str(cat.item_ids[i]), "title": str(cat.titles[i]),
                  "score": round(float(scores[i] if scores[i] > 0 else cat.trending[i]), 5),
                  "source": "live" if scores[i] > 0 else "release"} for i in chosen]
        request_id = new_id()
        self._observe("trending", "none", t0, k, len(items))
        self._emit_request("trending", request_id, "", "", "none", k,
                           [it["item_id"] for it in items], t0)
        return {"request_id": request_id, "window": window, "release": self.release,
                "items": items}

    def similar(self, item_id: str, k: int = 10) -> dict[str, Any]:
        self._check_k(k)
        cat, m = self.rec.catalog, self.rec.model
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
                for j in self.rec.index.search(m.als_items[i], 3 * k).tolist():
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
        items = [{"item_id": str(cat.item_ids[j]), "title": str(cat.titles[j]),
                  "score": round(scores[j][0], 5), "reason": scores[j][1]} for j in ranked]
        return {"item_id": item_id, "items": items}

    def creators(self, user_id: str, k: int = 10) -> dict[str, Any]:
        self._check_k(k)
        cat = self.rec.catalog
        p = self.profile(user_id)
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
        return {"user_id": user_id, "cold": p.cold, "creators": [
            {"creator_id": cat.creator_names[c], "score": round(s, 5), "reason": why}
            for c, s, why in out[:k]]}

    def search(self, q: str, user_id: str | None = None, k: int = 10) -> dict[str, Any]:
        self._check_k(k)
        q = q.strip()
        if not q or len(q) > 200:
            raise InputError("q", "must be 1 to 200 characters")
        t0 = time.perf_counter()
        cat = self.rec.catalog
        if self._search is None or self._search[0] != id(cat.titles):
            self._search = (id(cat.titles), SearchIndex(cat.titles, cat.tags))
        hits, text = self._search[1].search(q, 500)
        keep = cat.available[hits]
        hits, text = hits[keep], text[keep]
        score = standardize(text)
        personal = np.zeros(len(hits), np.float32)
        if user_id and len(hits) > 1:
            p = self.profile(user_id)
            variant = self.assignment(user_id)["variant"]
            personal, _ = blend(self.rec.signals(self.rec.components(p, hits, int(time.time()))),
                                self._weights(variant, self.toggles.current(),
                                              self.routing.stable))
            score = score + 0.5 * standardize(personal)
        order = np.argsort(-score, kind="stable")[:k]
        items = [{"item_id": str(cat.item_ids[hits[j]]), "title": str(cat.titles[hits[j]]),
                  "score": round(float(score[j]), 5), "text_score": round(float(text[j]), 5),
                  "personal_score": round(float(personal[j]), 5)} for j in order]
        request_id = new_id()
        self._observe("search", "none", t0, k, len(items))
        self._emit_request("search", request_id, user_id or "", "", "none", k,
                           [it["item_id"] for it in items], t0)
        return {"request_id": request_id, "q": q, "user_id": user_id, "items": items}

    # ---- items ----------------------------------------
    def get_item(self, item_id: str) -> dict[str, Any]:
        cat = self.rec.catalog
        i = cat.index.get(item_id)
        if i is None:
            raise NotFoundError("item_id", f"unknown item '{item_id}'")
        stats = self.state.item_stats(item_id)
        published = int(cat.published_at[i])
        c = int(cat.creators[i])
        return {"item_id": item_id, "title": str(cat.titles[i]),
                "creator_id": cat.creator_names[c] if c >= 0 else None,
                "tags": [t for t in str(cat.tags[i]).split("|") if t],
                "published_at": published if published > np.iinfo(np.int64).min else None,
                "available": bool(cat.available[i]), "in_release": i < cat.n_release,
                "stats": {"trending_score": round(float(cat.trending[i]), 5),
                          "quality": round(float(cat.quality[i]), 5),
                          "live_events": {Event(e).name.lower(): n for e, n in stats.items()}}}

    def upsert_item(self, item: CatalogItem) -> dict[str, Any]:
        seq = self.state.upsert_item(item)
        with self._catalog_lock:
            self.rec.catalog = self.rec.catalog.with_upserts(
                [CatalogItem(**{**item.__dict__, "seq": seq})], self._quality_prior())
        self._search = None
        return {**self.get_item(item.item_id), "catalog_seq": seq}

    # ---- users ----------------------------------------
    def history(self, user_id: str, limit: int = 50) -> dict[str, Any]:
        if not 1 <= limit <= HISTORY_LIMIT:
            raise InputError("limit", f"must be between 1 and {HISTORY_LIMIT}, got {limit}")
        live = self.state.history(user_id, limit)
        p = self.profile(user_id)
        cat, m = self.rec.catalog, self.rec.model
        u = p.index
        return {"user_id": user_id, "forgotten": user_id in self._forgotten,
                "live": [{"item_id": e.item_id, "type": Event(e.event).name.lower(),
                          "value": e.value, "ts": e.ts} for e in live],
                "release_history_items": 0 if u is None
                else int(m.hist_indptr[u + 1] - m.hist_indptr[u]),
                "recent_positive": [str(cat.item_ids[i]) for i in p.recent[:20]]}

    def forget(self, user_id: str) -> dict[str, Any]:
        n = self.state.delete_user(user_id)
        self.state.set_doc(f"forgotten:{user_id}", int(time.time()))
        self._forgotten.add(user_id)
        self.invalidate(user_id)
        return {"user_id": user_id, "deleted_events": n, "forgotten": True}
