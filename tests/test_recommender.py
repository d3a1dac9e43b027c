from __future__ import annotations

import numpy as np
import pytest

from novarank.config import SIGNALS, RankerConfig, Weights
from novarank.errors import ConfigError
from novarank.ranking.recommender import Recommender


def test_known_user_feed_excludes_seen_and_explains_scores(small_model):
    rec = Recommender(small_model)
    user = "u3"
    feed = rec.recommend(user, 10, now=small_model.as_of)
    assert not feed.cold and len(feed.items) == 10
    seen = set(small_model.item_ids[rec.profile(user).seen].tolist())
    assert not seen & {i.item_id for i in feed.items}
    for it in feed.items:
        if it.source == "ranked":
            assert set(it.reasons) == set(SIGNALS)
            assert sum(it.reasons.values()) == pytest.approx(it.score, abs=1e-3)


def test_cold_user_gets_a_full_feed(small_model):
    feed = Recommender(small_model).recommend("never-seen", 25, now=small_model.as_of)
    assert feed.cold and len(feed.items) == 25
    assert len({i.item_id for i in feed.items}) == 25


def test_fill_rate_is_full_even_when_k_exceeds_candidates(small_model):
    rec = Recommender(small_model)
    seen = len(rec.profile("u1").seen)
    feed = rec.recommend("u1", 1_000, now=small_model.as_of)
    assert len(feed.items) == small_model.n_items - seen


def test_variants_select_weight_sets(small_model):
    ranker = RankerConfig(variants={"control": Weights(),
                                    "trend_only": Weights(relevance=0, freshness=0, trending=1,
                                                          affinity=0, quality=0)})
    rec = Recommender(small_model, ranker)
    feed = rec.recommend("u2", 10, variant="trend_only", now=small_model.as_of)
    trend = np.log1p(small_model.trending)
    got = [trend[rec.catalog.index[i.item_id]] for i in feed.items]
    assert got == sorted(got, reverse=True)
    with pytest.raises(ConfigError, match="unknown variant"):
        rec.recommend("u2", 10, variant="nope")


@pytest.mark.parametrize("k", [0, -1, 1_001])
def test_k_out_of_range(small_model, k):
    with pytest.raises(ConfigError, match="k must be between 1 and 1000"):
        Recommender(small_model).recommend("u1", k)


def test_candidate_mode_matches_full_scan_on_the_top(small_model):
    """Above full_scan_max the ranker scores a candidate set; top items should agree."""
    full = Recommender(small_model)
    cand = Recommender(small_model, small_model.config.ranker.model_copy(
        update={"full_scan_max": 10, "ann_candidates": 100}))
    assert full.full_scan and not cand.full_scan
    overlap = []
    for u in ("u0", "u4", "u9", "u12"):
        a = {i.item_id for i in full.recommend(u, 10, now=small_model.as_of).items}
        b = {i.item_id for i in cand.recommend(u, 10, now=small_model.as_of).items}
        overlap.append(len(a & b) / 10)
    assert np.mean(overlap) >= 0.6
