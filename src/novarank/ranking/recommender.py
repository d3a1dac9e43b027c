"""The ranker: candidates -> five signals -> blend -> filters/diversity -> backfill.

It ranks one profile at a time and knows nothing of caches, cursors or telemetry; every
feed (HTTP, the CLI, the Python API, the benchmarks) comes from online/feeds.py, which
calls `rank`."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from novarank.candidates.ann import ItemIndex
from novarank.config import SIGNALS, RankerConfig
from novarank.data.events import PREFERENCE_WEIGHT, SEEN_EVENTS, Event
from novarank.errors import ConfigError
from novarank.model import Model
from novarank.ranking.blend import blend, decay, standardize
from novarank.ranking.catalog import CatalogView
from novarank.ranking.select import select_top_k
from novarank.stores.state import Engagement

DAY = 86_400
# raw per-candidate inputs, before they are folded into the five signals
TRENDING_Z_CAP = 3.0
# the trending input is log1p(decayed weight), and one user adds at most one share's weight
# to an item per window (online/influence.py): a spread below that is one user's say, so
# it is never more than one deviation (a single share took every feed of a quiet catalog)
TRENDING_MIN_SD = float(np.log1p(max(PREFERENCE_WEIGHT.values())))
# neighbour sums go through a catalog-wide array when it is at most this many times
# longer than the neighbour lists (a scan is then cheaper than sorting them)
DENSE_SUM_RATIO = 16
# neighbour lists are also kept as rows of one width when padding them costs at most this
# share over their entries: a user's lists are then gathered in one take
PADDED_MAX_RATIO = 1.25
COMPONENTS = ("item_item", "als", "freshness", "trending", "affinity", "quality")
_MIN_SD = np.array([0.0, 0.0, 0.0, TRENDING_MIN_SD, 0.0, 0.0], np.float32)


@dataclass(frozen=True)
class UserProfile:
    """A user's state as the ranker sees it: the release's history plus live engagement.

    It holds the catalog snapshot its item indices refer to: ranking reads that one view
    for the whole request, however often upserts swap `Recommender.catalog` meanwhile."""

    index: int | None  # row in the release's user arrays; None = unknown to the release
    seen: np.ndarray  # item indices to filter
    recent: np.ndarray  # positive items, newest first (<= max_history)
    recency: np.ndarray  # weight per recent item
    catalog: CatalogView  # the snapshot read once for this request
    live: tuple[Engagement, ...] = ()  # the live engagement merged in (what a replay needs)
    forgotten: bool = False  # the user's rows in the release were ignored

    @property
    def cold(self) -> bool:
        return self.index is None and not len(self.recent)


@dataclass(frozen=True)
class Ranked:
    items: np.ndarray  # item indices, best first
    scores: np.ndarray
    contributions: np.ndarray  # (n, 5)
    backfill: np.ndarray  # item indices appended from trending


@dataclass(frozen=True)
class Rows:
    """A CSR matrix's arrays, typed (scipy ships no type stubs: the boundary is here)."""

    indptr: np.ndarray
    indices: np.ndarray
    data: np.ndarray
    columns: int

    @classmethod
    def of(cls, m: Any) -> Rows:
        return cls(m.indptr, m.indices, m.data, int(m.shape[1]))

    def entries(self, rows: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(positions into indices/data of the given rows' entries, end to end; entries
        per row), without scipy's fancy indexing (which costs more than the sums it feeds)."""
        starts = self.indptr[rows]
        counts = self.indptr[rows + 1] - starts
        total = int(counts.sum())
        return np.arange(total) + np.repeat(starts - (np.cumsum(counts) - counts), counts), counts


@dataclass(frozen=True)
class Padded:
    """Every row of a CSR matrix as one fixed-width row (zero weights past its end): the
    rows of a user's history are then one 2-D take instead of ranges stitched end to end
    (the miss path's capacity: bench/bench_peer.py)."""

    indices: np.ndarray  # (rows, width) int32
    data: np.ndarray  # (rows, width) float32, 0 past each row's end

    @classmethod
    def of(cls, rows: Rows, max_ratio: float = PADDED_MAX_RATIO) -> Padded | None:
        """None when padding would cost more than `max_ratio` times the entries."""
        counts = np.diff(rows.indptr)
        n, nnz = len(counts), len(rows.indices)
        width = int(counts.max()) if n else 0
        if not nnz or n * width > max_ratio * nnz:
            return None
        at = np.repeat(np.arange(n), counts)
        col = np.arange(nnz) - np.repeat(rows.indptr[:-1], counts)
        indices = np.zeros((n, width), np.int32)
        data = np.zeros((n, width), np.float32)
        indices[at, col], data[at, col] = rows.indices, rows.data
        return cls(indices, data)


class Recommender:
    """Scores one user at a time over a release; safe to share across threads.

    `catalog` is swapped (never mutated) when upserts or live trending arrive.
    """

    def __init__(self, model: Model, ranker: RankerConfig | None = None,
                 index: ItemIndex | None = None) -> None:
        self.model = model
        self.ranker = ranker or model.config.ranker
        self._user_index = {u: i for i, u in enumerate(model.user_ids.tolist())}
        self.catalog = CatalogView.from_model(model)
        self._neighbours = Rows.of(model.item_item)
        self._padded = Padded.of(self._neighbours)
        self.full_scan = model.n_items <= self.ranker.full_scan_max
        self.index = index or model.build_index()

    def catalog_at(self, now: int, live: Mapping[str, float] | None = None, read: str = ""
                   ) -> CatalogView:
        """The catalog with the release's trending decayed to `now`, plus live engagement:
        what the service ranks with (online/live.py), and what a replay must rank with."""
        m = self.model
        factor = float(np.exp2(-max(0, now - m.as_of) / (self.ranker.trending_half_life_days
                                                          * DAY)))
        return self.catalog.with_trending(m.trending, factor, live or {}, now, read)

    def weights(self, variant: str) -> np.ndarray:
        try:
            return np.asarray(self.ranker.weights(variant).vector(), np.float32)
        except KeyError as exc:
            raise ConfigError(str(exc.args[0])) from None

    # ---- users --------------------------------------------------------------------------
    def release_user(self, user_id: str) -> int | None:
        return self._user_index.get(user_id)

    def profile(self, user_id: str, live: Sequence[Engagement] = (),
                use_release: bool = True) -> UserProfile:
        """Release history merged with live engagement (newest first), for filters and taste.
        `use_release=False` ignores the user's rows in the release (a forgotten user)."""
        m, r, cat = self.model, self.ranker, self.catalog
        u = self._user_index.get(user_id) if use_release else None
        live_seen, live_pos = [], []
        for e in live:  # newest first
            i = cat.index.get(e.item_id)
            if i is None:
                continue
            if Event(e.event) in SEEN_EVENTS:
                live_seen.append(i)
            if PREFERENCE_WEIGHT[Event(e.event)] > 0:
                live_pos.append(i)
        if u is not None:
            lo, hi = m.hist_indptr[u], m.hist_indptr[u + 1]
            items, w = m.hist_items[lo:hi], m.hist_weight[lo:hi]
            rel_pos = items[w > 0][::-1]
        else:
            items = rel_pos = np.empty(0, np.int64)
        seen = np.concatenate([items, np.asarray(live_seen, np.int64)]).astype(np.int64)
        pos = np.concatenate([np.asarray(live_pos, np.int64), rel_pos]).astype(np.int64)
        if len(live_pos):
            _, first = np.unique(pos, return_index=True)
            pos = pos[np.sort(first)]
        pos = pos[: r.max_history]
        recency = np.exp2(-np.arange(len(pos), dtype=np.float32) / r.history_half_life)
        return UserProfile(u, seen, pos, recency, cat, tuple(live), not use_release)

    # ---- candidates ----------------------------------------------------------------------
    def neighbour_scores(self, p: UserProfile) -> tuple[np.ndarray, np.ndarray]:
        """(items, summed neighbour similarity weighted by recency) over the user's history.

        A user's neighbour lists run to thousands of entries (ML-100K: ~13,000 for the
        median user); they are summed by item with one bincount, over the whole catalog
        when it is small next to them, else over their sorted distinct items."""
        known = p.recent < self.model.n_items  # upserted items have no neighbours
        recent = p.recent[known]
        if not len(recent):
            return np.empty(0, np.int64), np.empty(0, np.float32)
        s = self._neighbours
        padded = self._padded
        if padded is not None and s.columns <= DENSE_SUM_RATIO * len(recent) * len(
                padded.indices[0]):  # the sums cover the catalog: padding adds zeros only
            weights = padded.data[recent] * p.recency[known][:, None]
            sums = np.bincount(padded.indices[recent].ravel(), weights=weights.ravel(),
                               minlength=s.columns)
            items = np.flatnonzero(sums)
            return items.astype(np.int64), sums[items].astype(np.float32)
        idx, counts = s.entries(recent)
        total = len(idx)
        if not total:
            return np.empty(0, np.int64), np.empty(0, np.float32)
        found = s.indices[idx]
        weights = s.data[idx] * np.repeat(p.recency[known], counts)
        if s.columns <= DENSE_SUM_RATIO * total:
            sums = np.bincount(found, weights=weights, minlength=s.columns)
            items = np.flatnonzero(sums)  # stored similarities are > 0 (fit_item_item)
            return items.astype(np.int64), sums[items].astype(np.float32)
        items, inv = np.unique(found, return_inverse=True)
        return items.astype(np.int64), np.bincount(inv, weights=weights).astype(np.float32)

    def candidates(self, p: UserProfile, nb: tuple[np.ndarray, np.ndarray]) -> np.ndarray:
        """Every item for small catalogs; else the union of the per-source budgets."""
        m, r, cat = self.model, self.ranker, p.catalog
        if self.full_scan:
            return np.arange(cat.n_items)
        nb_items, nb_vals = nb
        budget = r.neighbour_candidates
        if len(nb_items) > budget:
            nb_items = nb_items[np.argpartition(-nb_vals, budget)[:budget]]
        parts = [nb_items, cat.trending_order[: r.trending_candidates],
                 cat.fresh_order[: r.fresh_candidates]]
        if p.index is not None and r.ann_candidates:
            parts.append(self.index.search(m.als_users[p.index], r.ann_candidates))
        return np.unique(np.concatenate(parts).astype(np.int64))

    # ---- signals -------------------------------------------------------------------------
    def components(self, p: UserProfile, cands: np.ndarray, now: int,
                   nb: tuple[np.ndarray, np.ndarray] | None = None) -> np.ndarray:
        """(n_candidates, 6) raw inputs in COMPONENTS order, column-major: each input is
        one contiguous column (standardising columns of a row-major array costs 3x).
        `cands` are sorted and distinct (`candidates`), so as many as the catalog holds
        are the whole catalog in order: then nothing is gathered by candidate."""
        m, r, cat = self.model, self.ranker, p.catalog
        whole = len(cands) == cat.n_items
        out = np.zeros((len(COMPONENTS), len(cands)), np.float32).T
        nb_items, nb_vals = nb if nb is not None else self.neighbour_scores(p)
        if whole:
            out[nb_items, 0] = nb_vals
        elif len(nb_items):
            at = np.minimum(np.searchsorted(nb_items, cands), len(nb_items) - 1)
            hit = nb_items[at] == cands
            out[hit, 0] = nb_vals[at[hit]]
        if p.index is not None:
            taste = m.als_users[p.index]
            if whole:  # upserted items (past the release's) have no factors
                out[: m.n_items, 1] = m.als_items @ taste
            else:
                known = cands < m.n_items
                out[known, 1] = m.als_items[cands[known]] @ taste
        out[:, 2] = decay(now - cat.published_at[cands], r.freshness_half_life_days * DAY)
        out[:, 3] = np.log1p(cat.trending[cands])
        if len(p.recent):
            f = Rows.of(cat.facets)
            idx, counts = f.entries(p.recent)
            prof = np.bincount(f.indices[idx], weights=f.data[idx] * np.repeat(p.recency, counts),
                               minlength=f.columns)
            norm = np.linalg.norm(prof)
            if norm > 0:
                out[:, 4] = (cat.facets if whole else cat.facets[cands]) @ (prof / norm)
        out[:, 5] = cat.quality[cands]
        return out

    def signals(self, comps: np.ndarray) -> np.ndarray:
        """Fold the six raw inputs into the five standardised signals (SIGNALS order)."""
        a = self.ranker.als_mix
        z = standardize(comps, _MIN_SD)
        out = np.empty((len(SIGNALS), len(comps)), np.float32).T  # column-major, as comps
        out[:, 0] = (z[:, 0] + a * z[:, 1]) / (1.0 + a)
        out[:, 1] = z[:, 2]
        # trending is the one signal clients write: one spike among near-zero counts would
        # stand sqrt(n) deviations out and outweigh everything (a single share took over
        # every feed); capped, no item's trending adds more than TRENDING_Z_CAP * weight
        out[:, 2] = np.clip(z[:, 3], -TRENDING_Z_CAP, TRENDING_Z_CAP)
        out[:, 3:] = z[:, 4:]
        return out

    # ---- the feed ----------------------------------------------------------------------------
    def _excluded(self, p: UserProfile, extra: np.ndarray | None = None) -> np.ndarray:
        excluded = ~p.catalog.available
        excluded[p.seen] = True
        if extra is not None:
            excluded[extra] = True
        return excluded

    def rank(self, p: UserProfile, k: int, weights: np.ndarray, now: int,
             exclude: np.ndarray | None = None) -> Ranked:
        cat = p.catalog
        nb = self.neighbour_scores(p)
        cands = self.candidates(p, nb)
        scores, contrib = blend(self.signals(self.components(p, cands, now, nb)), weights)
        sel = select_top_k(cands, scores, k, self._excluded(p, exclude), cat.creators,
                           self.ranker.creator_cap, cat.trending_order)
        return Ranked(cands[sel.ranked], scores[sel.ranked], contrib[sel.ranked], sel.backfill)

    def fallback(self, p: UserProfile, k: int) -> np.ndarray:
        """Trending minus seen/unavailable: the kill-switch path, still k items."""
        sel = select_top_k(np.empty(0, np.int64), np.empty(0, np.float32), k,
                           self._excluded(p), None, 0, p.catalog.trending_order)
        return sel.backfill
