"""Invariants of the pure ranking functions, checked with Hypothesis."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from novarank.ranking.blend import blend, decay, standardize
from novarank.ranking.select import select_top_k


@st.composite
def scenario(draw):
    n_items = draw(st.integers(1, 60))
    n_cands = draw(st.integers(0, 80))
    items = np.array(draw(st.lists(st.integers(0, n_items - 1), min_size=n_cands,
                                   max_size=n_cands)), dtype=np.int64)
    scores = np.array(draw(st.lists(st.floats(-1e3, 1e3, allow_nan=False), min_size=n_cands,
                                    max_size=n_cands)), dtype=np.float32)
    excluded = np.array(draw(st.lists(st.booleans(), min_size=n_items, max_size=n_items)))
    creators = np.array(draw(st.lists(st.integers(-1, 4), min_size=n_items, max_size=n_items)))
    k = draw(st.integers(1, 30))
    cap = draw(st.integers(0, 3))
    backfill = np.array(draw(st.permutations(list(range(n_items)))), dtype=np.int64)
    return items, scores, excluded, creators, k, cap, backfill


@settings(max_examples=300, deadline=None)
@given(scenario())
def test_feed_invariants(case):
    items, scores, excluded, creators, k, cap, backfill = case
    sel = select_top_k(items, scores, k, excluded, creators, cap, backfill)
    chosen = np.concatenate([items[sel.ranked], sel.backfill])
    assert len(chosen) <= k
    assert len(set(chosen.tolist())) == len(chosen), "duplicates"
    assert not excluded[chosen].any(), "an excluded (seen/unavailable) item was served"
    eligible = int((~excluded).sum())
    assert len(chosen) == min(k, eligible), "feed not filled although the catalog could"
    if cap == 0:
        ranked_scores = scores[sel.ranked]
        assert np.all(np.diff(ranked_scores) <= 0), "not sorted by score"


@settings(max_examples=200, deadline=None)
@given(scenario())
def test_creator_cap_holds_while_alternatives_exist(case):
    items, scores, excluded, creators, k, cap, _ = case
    if cap == 0:
        return
    sel = select_top_k(items, scores, k, excluded, creators, cap, None)
    chosen = items[sel.ranked]
    counts = np.bincount(creators[chosen][creators[chosen] >= 0], minlength=5)
    if counts.max(initial=0) > cap:
        # only allowed when no unchosen eligible candidate could have taken the slot
        unchosen = set(items[~excluded[items]].tolist()) - set(chosen.tolist())
        free = [i for i in unchosen if creators[i] < 0 or counts[creators[i]] < cap]
        assert not free


def test_cap_prefers_other_creators():
    items = np.arange(6)
    scores = np.array([6, 5, 4, 3, 2, 1], np.float32)
    creators = np.array([0, 0, 0, 1, 1, 2])
    sel = select_top_k(items, scores, 4, np.zeros(6, bool), creators, 2, None)
    assert items[sel.ranked].tolist() == [0, 1, 3, 4]


def test_backfill_fills_from_trending_when_candidates_run_out():
    sel = select_top_k(np.array([3]), np.array([1.0], np.float32), 3,
                       np.array([True, False, False, False]), None, 0, np.array([0, 3, 2, 1]))
    assert sel.ranked.tolist() == [0]
    assert sel.backfill.tolist() == [2, 1]  # 0 excluded, 3 already chosen


def test_standardize_and_blend():
    z = standardize(np.array([1.0, 2.0, 3.0]))
    assert abs(float(z.mean())) < 1e-6 and abs(float(z.std()) - 1) < 1e-6
    assert standardize(np.array([5.0, 5.0])).tolist() == [0.0, 0.0]
    scores, contrib = blend(np.array([[1.0, 2.0], [0.0, -1.0]], np.float32), np.array([2.0, 0.5]))
    assert contrib.tolist() == [[2.0, 1.0], [0.0, -0.5]]
    assert scores.tolist() == [3.0, -0.5]


def test_decay_halves_every_half_life_and_ignores_unknown_times():
    d = decay(np.array([0, 10, 20, np.iinfo(np.int64).min], dtype=np.float64), 10.0)
    np.testing.assert_allclose(d, [1.0, 0.5, 0.25, 0.0], atol=1e-6)


def _walk(items, scores, k, excluded, creators, cap):
    """The selection spelled out the slow way: every eligible candidate sorted (stable),
    then one pass of the creator cap; what select_top_k's partial sort must equal."""
    _, first = np.unique(items, return_index=True)
    eligible = sorted(int(p) for p in first if not excluded[items[p]])  # candidate order
    pos = np.array(sorted(eligible, key=lambda p: -float(scores[p])), dtype=np.int64)
    if cap == 0:
        return pos[:k].tolist()
    head, overflow, counts = [], [], {}
    for p in pos.tolist():
        c = int(creators[items[p]])
        if c < 0 or counts.get(c, 0) < cap:
            counts[c] = counts.get(c, 0) + 1
            head.append(p)
        else:
            overflow.append(p)
        if len(head) >= k:
            break
    return (head + overflow + pos[len(head) + len(overflow):].tolist())[:k]


@settings(max_examples=400, deadline=None)
@given(scenario(), st.booleans())
def test_the_partial_sort_picks_what_a_full_sort_would(case, coarse):
    """Ties included (coarse scores): the best k (2k under a cap) are sorted, not all."""
    items, scores, excluded, creators, k, cap, _ = case
    if coarse:
        scores = np.round(scores / 400).astype(np.float32)  # a handful of distinct values
    sel = select_top_k(items, scores, k, excluded, creators, cap, None)
    assert sel.ranked.tolist() == _walk(items, scores, k, excluded, creators, cap)


def test_standardize_takes_each_column_on_its_own():
    x = np.array([[1.0, 7.0, 0.0], [2.0, 7.0, 10.0], [3.0, 7.0, 20.0]], np.float32)
    z = standardize(np.asfortranarray(x))
    np.testing.assert_allclose(z[:, 0], standardize(x[:, 0]), atol=1e-6)
    assert z[:, 1].tolist() == [0.0, 0.0, 0.0]  # constant: no information
    np.testing.assert_allclose(z[:, 2], z[:, 0], atol=1e-6)


def test_a_deviation_floor_keeps_one_users_say_to_one_standard_score():
    """One share (log1p(3)) on one item of a quiet catalog: 22 deviations plain, 1 floored."""
    from novarank.ranking.recommender import TRENDING_MIN_SD

    x = np.zeros((500, 2), np.float32)
    x[0, :] = np.log1p(3.0)
    plain = standardize(x)
    floored = standardize(x, np.array([0.0, TRENDING_MIN_SD], np.float32))
    assert plain[0, 0] > 20 and plain[0, 1] > 20  # the floor touches its own column only
    assert floored[0, 0] > 20 and floored[0, 1] == pytest.approx(1.0, abs=0.01)
    wide = np.array([[0.0], [10.0]], np.float32)  # a real spread is left as it is
    assert standardize(wide, np.array([TRENDING_MIN_SD], np.float32)).ravel().tolist() == [-1, 1]
