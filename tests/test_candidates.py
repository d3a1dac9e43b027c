from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import scipy.sparse as sp

from novarank.candidates import ItemIndex, ItemItemConfig, fit_item_item, top_n_per_row
from novarank.candidates.popularity import item_quality, trending
from novarank.data.dataset import Dataset
from novarank.data.events import Event


def test_top_n_per_row_matches_dense_reference():
    rng = np.random.default_rng(0)
    dense = rng.random((30, 40)) * (rng.random((30, 40)) < 0.4)
    got = top_n_per_row(sp.csr_matrix(dense), 5).toarray()
    for row_dense, row_got in zip(dense, got, strict=True):
        nz = np.flatnonzero(row_dense)
        keep = nz[np.argsort(-row_dense[nz], kind="stable")][:5]
        assert set(np.flatnonzero(row_got)) == set(keep)
        np.testing.assert_allclose(row_got[keep], row_dense[keep])


def test_item_item_is_shrunk_cosine_in_blocks():
    rng = np.random.default_rng(1)
    x = sp.csr_matrix((rng.random((50, 25)) < 0.2).astype(np.float32))
    got = fit_item_item(x, ItemItemConfig(neighbours=25, shrinkage=3.0, block=7)).toarray()
    co = (x.T @ x).toarray()
    n = np.sqrt(np.diag(co))
    ref = co / (np.outer(n, n) + 3.0)
    np.fill_diagonal(ref, 0)
    np.testing.assert_allclose(got, ref, rtol=1e-5, atol=1e-6)


def test_trending_decays_and_ignores_the_future(synth):
    ds = synth.dataset
    t0 = int(np.median(ds.ts))
    tr = trending(ds, t0, 86_400.0)
    late = ds.ts > t0
    only_late = np.setdiff1d(ds.item[late], ds.item[~late])
    assert (tr[only_late] == 0).all()
    # a day later the same events weigh half
    later = trending(ds.subset(~late), t0 + 86_400, 86_400.0)
    np.testing.assert_allclose(later, tr * 0.5, rtol=1e-4)


def test_quality_is_a_smoothed_satisfaction_rate():
    rows = [("u", "liked", Event.LIKE, 1.0, 1)] * 10 + [("u", "skipped", Event.SKIP, 1.0, 2)] * 10
    rows += [("u", "once", Event.LIKE, 1.0, 3), ("u", "unknown", Event.CLICK, 1.0, 4)]
    rows += [("u", "half", Event.WATCH, 0.5, 5)] * 10
    ds = Dataset.from_frame("q", pd.DataFrame(rows, columns=["user_id", "item_id", "event",
                                                             "value", "ts"]))
    q = dict(zip(ds.items.ids.tolist(), item_quality(ds, prior_strength=5.0).tolist(),
                 strict=True))
    prior = (10 * 1.0 + 10 * 0.0 + 1.0 + 10 * 0.5) / 31
    assert q["unknown"] == pytest.approx(prior)  # no observation: the catalog mean
    assert q["liked"] > q["once"] > q["unknown"] > q["skipped"]  # one like counts for little
    assert q["half"] == pytest.approx((5.0 + 5 * prior) / 15)


def test_ann_index_recalls_the_exact_top():
    rng = np.random.default_rng(2)
    centers = rng.normal(size=(20, 16))
    vecs = (centers[rng.integers(0, 20, 20_000)] + 0.3 * rng.normal(size=(20_000, 16)))
    vecs = vecs.astype(np.float32)
    ivf = ItemIndex.build(vecs, exact_max=1_000)
    exact = ItemIndex.build(vecs, exact_max=10**9)
    assert not ivf.exact and exact.exact
    recall = []
    for q in rng.normal(size=(20, 16)).astype(np.float32):
        truth = set(exact.search(q, 50).tolist())
        recall.append(len(truth & set(ivf.search(q, 50).tolist())) / 50)
    assert np.mean(recall) > 0.8
