"""Fit every component from a Dataset into a `Model`; weight tuning lives in evaluation/."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import scipy.sparse as sp

from novarank.candidates import (
    ALSConfig,
    ItemItemConfig,
    fit_als,
    fit_item_item,
    item_quality,
    popularity,
    trending,
)
from novarank.config import TrainConfig
from novarank.data.dataset import Dataset, ItemTable
from novarank.data.events import seen_mask, weights_of
from novarank.model import Model

DAY = 86_400
Step = Callable[[str], object]


def _quiet(_: str) -> None:
    pass


def user_histories(ds: Dataset) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Distinct seen items per user, oldest first: (indptr, items, last_ts, weight)."""
    seen = seen_mask(ds.event)
    user, item, ts = ds.user[seen], ds.item[seen], ds.ts[seen]
    w = weights_of(ds.event[seen])
    key = user.astype(np.int64) * ds.n_items + item
    order = np.lexsort((ts, key))
    key, ts, w = key[order], ts[order], w[order]
    last = np.r_[key[1:] != key[:-1], True]  # last event of each (user, item)
    group = np.cumsum(np.r_[True, key[1:] != key[:-1]]) - 1
    weight = np.bincount(group, weights=w).astype(np.float32)
    key, ts = key[last], ts[last]
    u = (key // ds.n_items).astype(np.int64)
    # per user oldest -> newest
    order = np.lexsort((ts, u))
    u, key, ts, weight = u[order], key[order], ts[order], weight[order]
    indptr = np.concatenate([[0], np.cumsum(np.bincount(u, minlength=ds.n_users))])
    return indptr.astype(np.int64), (key % ds.n_items).astype(np.int32), ts, weight


def facet_matrix(items: ItemTable) -> tuple[sp.csr_matrix, np.ndarray, np.ndarray, np.ndarray]:
    """Items x facets (creator and tags), rows L2-normalised; plus creator codes and names."""
    creator_names, creator_codes = np.unique(items.creator.astype(str), return_inverse=True)
    creator_codes = creator_codes.astype(np.int32)
    has_creator = creator_names != ""
    creator_codes[~has_creator[creator_codes]] = -1
    rows: list[np.ndarray] = []
    names: list[str] = []
    cols: list[np.ndarray] = []
    idx = np.flatnonzero(creator_codes >= 0)
    remap = np.cumsum(has_creator) - 1
    rows.append(idx)
    cols.append(remap[creator_codes[idx]])
    names.extend(f"creator:{c}" for c in creator_names[has_creator])
    tag_lists = [t.split("|") if t else [] for t in items.tags.astype(str)]
    vocab: dict[str, int] = {}
    t_rows, t_cols = [], []
    for i, tags in enumerate(tag_lists):
        for t in tags:
            t_rows.append(i)
            t_cols.append(len(names) + vocab.setdefault(t, len(vocab)))
    names.extend(f"tag:{t}" for t in vocab)
    rows.append(np.asarray(t_rows, dtype=np.int64))
    cols.append(np.asarray(t_cols, dtype=np.int64))
    r, c = np.concatenate(rows), np.concatenate(cols)
    f = sp.csr_matrix((np.ones(len(r), np.float32), (r, c)), shape=(len(items), len(names)))
    norms = np.sqrt(np.asarray(f.multiply(f).sum(1)).ravel())
    f = sp.diags(1.0 / np.maximum(norms, 1e-12)).astype(np.float32) @ f
    return f.tocsr(), np.asarray(names, dtype=object), creator_codes, creator_names.astype(object)


def fit_model(ds: Dataset, cfg: TrainConfig | None = None, step: Step = _quiet) -> Model:
    """Train every component on `ds`; `step` is told what is being fitted (for progress)."""
    cfg = cfg or TrainConfig()
    as_of = ds.max_ts
    step("histories")
    indptr, h_items, h_ts, h_w = user_histories(ds)
    x = ds.matrix()
    step("popularity, trending, quality")
    pop = popularity(ds)
    trend = trending(ds, as_of, cfg.ranker.trending_half_life_days * DAY)
    qual = item_quality(ds, cfg.quality_prior)
    step("item-item neighbours")
    sims = fit_item_item(x, ItemItemConfig(neighbours=cfg.neighbours, shrinkage=cfg.shrinkage))
    step("ALS factors")
    users_f, items_f = fit_als(x, ALSConfig(factors=cfg.als_factors,
                                            regularization=cfg.als_regularization,
                                            alpha=cfg.als_alpha, iterations=cfg.als_iterations,
                                            seed=cfg.seed))
    step("facets")
    return assemble(ds.name, ds.user_ids, ds.items, (indptr, h_items, h_ts, h_w),
                    (pop, trend, qual), sims, (users_f, items_f), as_of, cfg, ds.fingerprint())


Histories = tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]  # indptr, items, ts, weight
Scores = tuple[np.ndarray, np.ndarray, np.ndarray]  # popularity, trending, quality


def assemble(name: str, user_ids: np.ndarray, items: ItemTable, histories: Histories,
             scores: Scores, item_item: sp.csr_matrix, factors: tuple[np.ndarray, np.ndarray],
             as_of: int, cfg: TrainConfig, fingerprint: str) -> Model:
    """The Model from fitted parts, whichever engine fitted them; facets come from the
    catalog here."""
    facets, facet_names, creators, creator_names = facet_matrix(items)
    indptr, h_items, h_ts, h_w = histories
    pop, trend, qual = scores
    return Model(
        name=name, user_ids=user_ids, item_ids=items.ids, titles=items.title,
        creators=creators, creator_names=creator_names, tags=items.tags,
        published_at=items.published_at, available=np.ones(len(items), bool),
        hist_indptr=indptr, hist_items=h_items, hist_ts=h_ts, hist_weight=h_w,
        popularity=pop, trending=trend, quality=qual, item_item=item_item,
        als_users=factors[0], als_items=factors[1], facets=facets, facet_names=facet_names,
        as_of=as_of, config=cfg, data_fingerprint=fingerprint,
    )
