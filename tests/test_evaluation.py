from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from novarank.data.dataset import Dataset
from novarank.data.events import Event
from novarank.evaluation import cohort_of, ranking_metrics, temporal_split


def test_metrics_known_values():
    m = ranking_metrics(np.array([5, 1, 9, 2]), np.array([1, 2, 3]), k=3)
    assert m["recall"] == pytest.approx(1 / 3)
    assert m["hit_rate"] == 1.0
    assert m["mrr"] == pytest.approx(0.5)
    idcg = 1 + 1 / np.log2(3) + 1 / np.log2(4)
    assert m["ndcg"] == pytest.approx((1 / np.log2(3)) / idcg)
    assert ranking_metrics(np.array([7]), np.array([1]), 10)["ndcg"] == 0.0


def test_cohorts_boundaries():
    assert [cohort_of(n) for n in (0, 4, 5, 20, 21, 100, 101)] == [
        "cold", "cold", "light", "light", "medium", "medium", "heavy"]


def test_temporal_split_holds_out_each_users_latest_events():
    rows = [("a", f"i{j}", Event.CLICK, 1.0, 100 + j) for j in range(10)]
    rows += [("b", "i0", Event.CLICK, 1.0, 5), ("b", "i1", Event.CLICK, 1.0, 6)]
    rows += [("c", "i0", Event.CLICK, 1.0, 1)]
    rows += [("a", "i0", Event.LIKE, 1.0, 500)]  # re-engagement with a train item
    ds = Dataset.from_frame("t", pd.DataFrame(rows, columns=["user_id", "item_id", "event",
                                                             "value", "ts"]))
    h = temporal_split(ds, 0.2)
    a, b, c = (ds.user_index[x] for x in "abc")
    train_a = h.train.ts[h.train.user == a]
    assert train_a.max() == 108  # 11 events -> the last 2 (i9 at 109, the like at 500) held out
    assert ds.items.ids[h.truth[a]].tolist() == ["i9"]
    assert "i0" not in ds.items.ids[h.truth[a]].tolist()  # seen in train: not a target
    assert b not in h.truth and c not in h.truth  # too few events to hold any out
