from __future__ import annotations

import numpy as np
import pytest

from novarank.config import RankerConfig, Weights
from novarank.errors import ConfigError
from novarank.ranking.recommender import Ranked, Recommender


def top(rec: Recommender, user: str, k: int, variant: str = "control") -> tuple[list[str], Ranked]:
    """The ranker's top k for the user (ranked, then backfill) at the release's clock."""
    r = rec.rank(rec.profile(user), k, rec.weights(variant), rec.model.as_of)
    return rec.catalog.item_ids[np.concatenate([r.items, r.backfill])].tolist(), r


def test_known_user_feed_excludes_seen_and_explains_scores(small_model):
    rec = Recommender(small_model)
    user = "u3"
    ids, r = top(rec, user, 10)
    assert not rec.profile(user).cold and len(ids) == 10
    seen = set(small_model.item_ids[rec.profile(user).seen].tolist())
    assert not seen & set(ids)
    assert r.contributions.shape == (len(r.items), 5)
    np.testing.assert_allclose(r.contributions.sum(axis=1), r.scores, atol=1e-3)


def test_cold_user_gets_a_full_feed(small_model):
    rec = Recommender(small_model)
    ids, _ = top(rec, "never-seen", 25)
    assert rec.profile("never-seen").cold and len(ids) == 25 and len(set(ids)) == 25


def test_fill_rate_is_full_even_when_k_exceeds_candidates(small_model):
    rec = Recommender(small_model)
    seen = len(rec.profile("u1").seen)
    ids, _ = top(rec, "u1", 1_000)
    assert len(ids) == small_model.n_items - seen


def test_variants_select_weight_sets(small_model):
    ranker = RankerConfig(variants={"control": Weights(),
                                    "trend_only": Weights(relevance=0, freshness=0, trending=1,
                                                          affinity=0, quality=0)})
    rec = Recommender(small_model, ranker)
    ids, _ = top(rec, "u2", 10, "trend_only")
    trend = np.log1p(small_model.trending)
    got = [trend[rec.catalog.index[i]] for i in ids]
    assert got == sorted(got, reverse=True)
    with pytest.raises(ConfigError, match="unknown variant"):
        rec.weights("nope")


def test_candidate_mode_matches_full_scan_on_the_top(small_model):
    """Above full_scan_max the ranker scores a candidate set; top items should agree."""
    full = Recommender(small_model)
    cand = Recommender(small_model, small_model.config.ranker.model_copy(
        update={"full_scan_max": 10, "ann_candidates": 100}))
    assert full.full_scan and not cand.full_scan
    overlap = []
    for u in ("u0", "u4", "u9", "u12"):
        a, b = set(top(full, u, 10)[0]), set(top(cand, u, 10)[0])
        overlap.append(len(a & b) / 10)
    assert np.mean(overlap) >= 0.6


def test_padded_neighbour_rows_sum_exactly_as_the_ranges_do(small_model):
    """The padded take and the CSR ranges give the same items and sums; lists too uneven
    to pad are left as ranges."""
    import copy

    import scipy.sparse as sp

    from novarank.ranking.recommender import Padded, Rows

    rec = Recommender(small_model)
    assert rec._padded is not None
    ranges = copy.copy(rec)  # a twin that sums the CSR ranges
    ranges._padded = None
    for u in [str(x) for x in small_model.user_ids[:40]]:
        p = rec.profile(u)
        a, b = rec.neighbour_scores(p), ranges.neighbour_scores(p)
        assert np.array_equal(a[0], b[0]) and np.array_equal(a[1], b[1])
    uneven = sp.csr_matrix((np.ones(12, np.float32), (np.r_[np.zeros(10, int), 1, 2],
                                                      np.r_[np.arange(10), 0, 1])),
                           shape=(3, 10))
    assert Padded.of(Rows.of(uneven)) is None  # 3 rows x 10 wide for 12 entries
