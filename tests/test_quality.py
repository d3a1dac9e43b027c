"""The full ranker must beat its own components on real data (MovieLens-100K)."""

from __future__ import annotations

import pytest

from novarank.config import TrainConfig
from novarank.data.loaders import load
from novarank.pipeline import offline


@pytest.mark.slow
def test_ranker_beats_als_and_item_item_on_movielens_100k():
    res = offline(load("ml-100k"), TrainConfig(), max_eval_users=None)
    rep = res.report
    assert rep is not None and rep.users == 943
    ranker = rep.get("ranker")
    for baseline in ("als", "item_item", "popularity"):
        other = rep.get(baseline)
        assert ranker["ndcg"] > other["ndcg"], baseline
        assert ranker["recall"] > other["recall"], baseline
    assert res.tuning is not None and res.tuning.ndcg_after >= res.tuning.ndcg_before
