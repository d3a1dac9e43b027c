"""recommend(): candidates -> five signals -> blend -> filters/diversity -> backfill."""

from __future__ import annotations

import time
from dataclasses import dataclass, field

import numpy as np

from novarank.candidates.ann import ItemIndex
from novarank.config import SIGNALS, RankerConfig
from novarank.errors import ConfigError
from novarank.model import Model
from novarank.ranking.blend import blend, decay, standardize
from novarank.ranking.select import select_top_k

DAY = 86_400
# raw per-candidate inputs, before they are folded into the five signals
COMPONENTS = ("item_item", "als", "freshness", "trending", "affinity", "quality")
MAX_K = 1_000


@dataclass(frozen=True)
class FeedItem:
    item_id: str
    title: str
    score: float
    source: str  # "ranked" or "backfill"
    reasons: dict[str, float] = field(default_factory=dict)  # signal -> contribution


@dataclass(frozen=True)
class Feed:
    user_id: str
    variant: str
    cold: bool
    items: list[FeedItem]


@dataclass(frozen=True)
class UserProfile:
    """A user's state as the ranker sees it."""

    index: int | None  # None: unknown to the release (cold start)
    seen: np.ndarray  # item indices to filter
    recent: np.ndarray  # positive items, newest first (<= max_history)
    recency: np.ndarray  # weight per recent item


class Recommender:
    """Scores one user at a time over a `Model`; cheap to call, safe to share across threads."""

    def __init__(self, model: Model, ranker: RankerConfig | None = None,
                 index: ItemIndex | None = None) -> None:
        self.model = model
        self.ranker = ranker or model.config.ranker
        self._user_index = {u: i for i, u in enumerate(model.user_ids.tolist())}
        self.trending_order = np.argsort(-model.trending, kind="stable")
        known = model.published_at > np.iinfo(np.int64).min
        fresh = np.flatnonzero(known)
        self.fresh_order = fresh[np.argsort(-model.published_at[fresh], kind="stable")]
        self.full_scan = model.n_items <= self.ranker.full_scan_max
        self.index = index or model.build_index()
        self._unavailable = ~model.available

    # ---- users --------------------------------------------------------------------------
    def profile(self, user_id: str, extra_seen: np.ndarray | None = None) -> UserProfile:
        m, r = self.model, self.ranker
        u = self._user_index.get(user_id)
        if u is None:
            empty = np.empty(0, np.int64)
            seen = empty if extra_seen is None else np.asarray(extra_seen, np.int64)
            return UserProfile(None, seen, empty, np.empty(0, np.float32))
        lo, hi = m.hist_indptr[u], m.hist_indptr[u + 1]
        items, w = m.hist_items[lo:hi], m.hist_weight[lo:hi]
        seen = items if extra_seen is None else np.concatenate([items, extra_seen])
        pos = items[w > 0][::-1][: r.max_history]
        recency = np.exp2(-np.arange(len(pos), dtype=np.float32) / r.history_half_life)
        return UserProfile(u, seen.astype(np.int64), pos.astype(np.int64), recency)

    # ---- candidates ----------------------------------------------------------------------
    def neighbour_scores(self, p: UserProfile) -> tuple[np.ndarray, np.ndarray]:
        """(items, summed neighbour similarity weighted by recency) over the user's history."""
        if not len(p.recent):
            return np.empty(0, np.int64), np.empty(0, np.float32)
        s = self.model.item_item
        starts, ends = s.indptr[p.recent], s.indptr[p.recent + 1]
        counts = ends - starts
        idx = np.concatenate([np.arange(a, b) for a, b in zip(starts, ends, strict=True)]) \
            if counts.sum() else np.empty(0, np.int64)
        cols = s.indices[idx]
        vals = s.data[idx] * np.repeat(p.recency, counts)
        items, inv = np.unique(cols, return_inverse=True)
        return items.astype(np.int64), np.bincount(inv, weights=vals).astype(np.float32)

    def candidates(self, p: UserProfile, nb: tuple[np.ndarray, np.ndarray]) -> np.ndarray:
        """Every item for small catalogs; else the union of the per-source budgets."""
        m, r = self.model, self.ranker
        if self.full_scan:
            return np.arange(m.n_items)
        nb_items, nb_vals = nb
        budget = r.neighbour_candidates
        if len(nb_items) > budget:
            nb_items = nb_items[np.argpartition(-nb_vals, budget)[:budget]]
        parts = [nb_items, self.trending_order[: r.trending_candidates],
                 self.fresh_order[: r.fresh_candidates]]
        if p.index is not None and r.ann_candidates:
            parts.append(self.index.search(m.als_users[p.index], r.ann_candidates))
        return np.unique(np.concatenate(parts).astype(np.int64))

    # ---- signals -------------------------------------------------------------------------
    def components(self, p: UserProfile, cands: np.ndarray, now: int,
                   nb: tuple[np.ndarray, np.ndarray] | None = None) -> np.ndarray:
        """(n_candidates, 6) raw inputs in COMPONENTS order."""
        m, r = self.model, self.ranker
        out = np.zeros((len(cands), len(COMPONENTS)), np.float32)
        nb_items, nb_vals = nb if nb is not None else self.neighbour_scores(p)
        if len(nb_items):
            at = np.searchsorted(nb_items, cands)
            at_c = np.minimum(at, len(nb_items) - 1)
            hit = nb_items[at_c] == cands
            out[hit, 0] = nb_vals[at_c[hit]]
        if p.index is not None:
            out[:, 1] = m.als_items[cands] @ m.als_users[p.index]
        out[:, 2] = decay(now - m.published_at[cands], r.freshness_half_life_days * DAY)
        out[:, 3] = np.log1p(m.trending[cands])
        if len(p.recent):
            prof = np.asarray(m.facets[p.recent].T @ p.recency).ravel()
            norm = np.linalg.norm(prof)
            if norm > 0:
                out[:, 4] = m.facets[cands] @ (prof / norm)
        out[:, 5] = m.quality[cands]
        return out

    def signals(self, comps: np.ndarray) -> np.ndarray:
        """Fold the six raw inputs into the five standardised signals (SIGNALS order)."""
        a = self.ranker.als_mix
        rel = (standardize(comps[:, 0]) + a * standardize(comps[:, 1])) / (1.0 + a)
        return np.column_stack([rel] + [standardize(comps[:, c]) for c in (2, 3, 4, 5)])

    # ---- the feed ----------------------------------------------------------------------------
    def rank(self, p: UserProfile, k: int, weights: np.ndarray, now: int
             ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """(ranked item ids, scores, contributions, backfilled item ids)."""
        nb = self.neighbour_scores(p)
        cands = self.candidates(p, nb)
        sig = self.signals(self.components(p, cands, now, nb))
        scores, contrib = blend(sig, weights)
        excluded = self._unavailable.copy()
        excluded[p.seen] = True
        sel = select_top_k(cands, scores, k, excluded, self.model.creators,
                           self.ranker.creator_cap, self.trending_order)
        return cands[sel.ranked], scores[sel.ranked], contrib[sel.ranked], sel.backfill

    def recommend(self, user_id: str, k: int = 10, variant: str = "control",
                  now: int | None = None) -> Feed:
        if not 1 <= k <= MAX_K:
            raise ConfigError(f"k must be between 1 and {MAX_K}, got {k}")
        try:
            weights = np.asarray(self.ranker.weights(variant).vector(), np.float32)
        except KeyError as exc:
            raise ConfigError(str(exc.args[0])) from None
        p = self.profile(user_id)
        now = int(time.time()) if now is None else now
        items, scores, contrib, backfill = self.rank(p, k, weights, now)
        m = self.model
        feed = [FeedItem(str(m.item_ids[i]), str(m.titles[i]), round(float(s), 5), "ranked",
                         {name: round(float(c), 5) for name, c in zip(SIGNALS, row, strict=True)})
                for i, s, row in zip(items, scores, contrib, strict=True)]
        feed += [FeedItem(str(m.item_ids[i]), str(m.titles[i]), 0.0, "backfill",
                          {"trending": round(float(np.log1p(m.trending[i])), 5)})
                 for i in backfill]
        return Feed(user_id, variant, p.index is None, feed)
