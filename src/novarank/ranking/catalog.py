"""The live catalog: the release's items plus upserts, and trending with live engagement.

A `CatalogView` is an immutable snapshot; the service builds a new one when upserts or
counters change and swaps the reference, so a request always sees one consistent view.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace

import numpy as np
import scipy.sparse as sp

from novarank.data.dataset import NO_TIME
from novarank.model import Model
from novarank.stores.state import CatalogItem


def _order_desc(values: np.ndarray, mask: np.ndarray | None = None) -> np.ndarray:
    idx = np.arange(len(values)) if mask is None else np.flatnonzero(mask)
    return idx[np.argsort(-values[idx], kind="stable")]


@dataclass(frozen=True)
class CatalogView:
    item_ids: np.ndarray  # str (object)
    index: Mapping[str, int]
    titles: np.ndarray
    creators: np.ndarray  # int32, -1 unknown
    creator_names: tuple[str, ...]
    tags: np.ndarray
    published_at: np.ndarray  # int64
    available: np.ndarray  # bool
    quality: np.ndarray  # float32
    trending: np.ndarray  # float32, decayed to `trending_at`
    facets: sp.csr_matrix
    facet_index: Mapping[str, int]
    n_release: int  # items [0, n_release) exist in the release's collaborative arrays
    trending_order: np.ndarray
    fresh_order: np.ndarray
    version: int = 0  # last catalog change applied
    trending_at: int = 0  # when trending was decayed and live engagement read (0: never)
    trending_id: str = ""  # that read's id: its `trending` event holds the live counts

    @property
    def n_items(self) -> int:
        return len(self.item_ids)

    @classmethod
    def from_model(cls, m: Model) -> CatalogView:
        ids = np.asarray(m.item_ids, dtype=object)
        published = np.asarray(m.published_at)
        return cls(
            item_ids=ids, index={str(x): i for i, x in enumerate(ids.tolist())},
            titles=np.asarray(m.titles, dtype=object), creators=np.asarray(m.creators),
            creator_names=tuple(str(c) for c in m.creator_names),
            tags=np.asarray(m.tags, dtype=object), published_at=published,
            available=np.asarray(m.available, dtype=bool).copy(),
            quality=np.asarray(m.quality), trending=np.asarray(m.trending, dtype=np.float32),
            facets=m.facets, facet_index={str(f): i for i, f in enumerate(m.facet_names)},
            n_release=m.n_items,
            trending_order=_order_desc(np.asarray(m.trending)),
            fresh_order=_order_desc(published.astype(np.float64), published > NO_TIME),
        )

    # ---- changes (each returns a new view) -------------------------------------------------
    def with_upserts(self, items: Sequence[CatalogItem], quality_prior: float) -> CatalogView:
        """Apply catalog upserts: existing ids are updated in place, new ids appended."""
        if not items:
            return self
        index = dict(self.index)
        creator_names = list(self.creator_names)
        creator_code = {c: i for i, c in enumerate(creator_names)}
        latest = {i.item_id: i for i in items}
        new = [it for it in latest.values() if it.item_id not in index]
        n_old, n_new = self.n_items, len(new)

        def grow(a: np.ndarray, fill: object) -> np.ndarray:
            return np.concatenate([a, np.full(n_new, fill, dtype=a.dtype)]) if n_new else a.copy()

        ids = grow(self.item_ids, "")
        titles, tags = grow(self.titles, ""), grow(self.tags, "")
        creators, published = grow(self.creators, -1), grow(self.published_at, NO_TIME)
        available, quality = grow(self.available, True), grow(self.quality, quality_prior)
        trending = grow(self.trending, 0.0)
        for j, it in enumerate(new):
            index[it.item_id] = n_old + j
            ids[n_old + j] = it.item_id
        rows, cols = [], []
        for it in latest.values():
            i = index[it.item_id]
            titles[i], tags[i], available[i] = it.title, it.tags, it.available
            published[i] = NO_TIME if it.published_at is None else it.published_at
            if it.creator_id:
                if it.creator_id not in creator_code:
                    creator_code[it.creator_id] = len(creator_names)
                    creator_names.append(it.creator_id)
                creators[i] = creator_code[it.creator_id]
            else:
                creators[i] = -1
            if i >= n_old:  # facet rows only for new items; release items keep theirs
                names = ([f"creator:{it.creator_id}"] if it.creator_id else []) + \
                    [f"tag:{t}" for t in it.tags.split("|") if t]
                known = [self.facet_index[n] for n in names if n in self.facet_index]
                rows += [i - n_old] * len(known)
                cols += known
        facets = self.facets
        if n_new:
            extra = sp.csr_matrix((np.ones(len(rows), np.float32), (rows, cols)),
                                  shape=(n_new, facets.shape[1]))
            norms = np.sqrt(np.asarray(extra.sum(1)).ravel())
            extra = sp.diags(1.0 / np.maximum(norms, 1e-12)).astype(np.float32) @ extra
            facets = sp.vstack([facets, extra], format="csr")
        version = max([self.version, *(it.seq for it in items)])
        return replace(self, item_ids=ids, index=index, titles=titles, creators=creators,
                       creator_names=tuple(creator_names), tags=tags, published_at=published,
                       available=available, quality=quality, trending=trending, facets=facets,
                       fresh_order=_order_desc(published.astype(np.float64), published > NO_TIME),
                       trending_order=_order_desc(trending), version=version)

    def with_trending(self, base: np.ndarray, base_factor: float,
                      live: Mapping[str, float], at: int = 0, read: str = ""
                      ) -> CatalogView:
        """Trending = the release's counts decayed to now + live engagement (decayed)."""
        trending = np.zeros(self.n_items, np.float32)
        trending[: len(base)] = np.asarray(base) * base_factor
        for item_id, w in live.items():
            i = self.index.get(item_id)
            if i is not None:
                trending[i] += w
        return replace(self, trending=trending, trending_order=_order_desc(trending),
                       trending_at=at, trending_id=read)
