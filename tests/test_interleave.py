"""Team-draft interleaving: a fair merge of two pages (and of two releases' windows, as
served), the test on served pages' clicks, and on the simulator a known difference found
with far fewer users than an A/B test needs."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from novarank.config import TrainConfig, Weights
from novarank.data.synthetic import SyntheticConfig, generate
from novarank.launch.interleaving import ab_test, interleaved, preference_of
from novarank.launch.offpolicy import ranker_of
from novarank.launch.simulator import Simulator
from novarank.online.window import Window, interleave
from novarank.ranking.interleave import A, B, team_draft
from novarank.ranking.recommender import Recommender
from novarank.training import fit_model

pages = st.lists(st.sampled_from([f"i{j}" for j in range(15)]), min_size=0, max_size=12,
                 unique=True)


@settings(max_examples=300, deadline=None)
@given(pages, pages, st.integers(1, 12), st.integers(0, 2 ** 31))
def test_team_draft_is_a_fair_merge(a, b, k, seed):
    out = team_draft(a, b, k, np.random.default_rng(seed))
    assert len(set(out.items)) == len(out.items) == min(k, len(set(a) | set(b)))
    for team, src in ((A, a), (B, b)):
        mine = [i for i, t in zip(out.items, out.teams, strict=True) if t == team]
        assert mine == [i for i in src if i in mine]  # each team places in its own order
    if set(a) == set(b) or (len(a) >= k and len(b) >= k):  # neither runs out early
        assert abs(out.teams.count(A) - out.teams.count(B)) <= 1


def test_credit_counts_clicks_by_team():
    out = team_draft(["a", "b"], ["c", "d"], 4, np.random.default_rng(0))
    first_a = out.teams.index(A)
    first_b = out.teams.index(B)
    assert out.credit([first_a]) == 1 and out.credit([first_b]) == -1
    assert out.credit([]) == 0 and out.credit([first_a, first_b]) == 0


@pytest.fixture(scope="module")
def world():
    d = generate(SyntheticConfig(users=2000, items=800, creators=80, events=120_000, seed=5))
    ds = d.dataset
    rec = Recommender(fit_model(ds, TrainConfig(als_iterations=5, als_factors=16,
                                                neighbours=50, tune=False)))

    def ranker(**w: float):
        return ranker_of(rec, np.asarray(Weights(**w).vector(), np.float32))

    def sim(seed: int) -> Simulator:
        return Simulator(d.truth, ds.items.ids.tolist(), ds.user_ids.tolist(),
                         ds.history_sizes(), seed=seed)
    return sim, ranker(), ranker(freshness=0, trending=0, affinity=0, quality=0)


@pytest.mark.slow
def _window(release: str, ids: list[str], catalog: list[str], seed: int) -> Window:
    rng = np.random.default_rng(seed)
    n = len(ids)
    return Window({"snapshot": release, "user_id": "u", "variant": "control", "cold": False,
                   "release": release, "inputs": {"live": []}},
                  np.asarray([catalog.index(i) for i in ids], np.int32),
                  rng.random(n).astype(np.float32), rng.random((n, 5)).astype(np.float32),
                  rng.integers(0, 2, n).astype(np.uint8))


def _catalog(ids: list[str]):
    from types import SimpleNamespace

    return SimpleNamespace(item_ids=np.asarray(ids, dtype=object),
                           index={x: i for i, x in enumerate(ids)})


def test_two_windows_merge_by_item_id_each_row_kept_from_the_release_that_placed_it():
    stable_ids = [f"i{j}" for j in range(30)]
    canary_ids = [f"i{j}" for j in range(5, 40)]  # the canary's catalog lacks i0..i4
    s_cat, c_cat = _catalog(stable_ids), _catalog(canary_ids)
    rng = np.random.default_rng(0)
    stable = _window("v1", list(rng.permutation(stable_ids)[:20]), stable_ids, 1)
    canary = _window("v2", list(rng.permutation(canary_ids)[:20]), canary_ids, 2)
    out = interleave(stable, s_cat, canary, c_cat, np.random.default_rng(3))
    shown = c_cat.item_ids[out.items].tolist()
    teams = out.meta["teams"]
    assert len(set(shown)) == len(shown) and len(teams) == len(shown)
    assert not set(shown) & {"i0", "i1", "i2", "i3", "i4"}  # not in the canary's catalog
    for r, (item, team) in enumerate(zip(shown, teams, strict=True)):
        src, cat = (stable, s_cat) if team == 0 else (canary, c_cat)
        row = cat.item_ids[src.items].tolist().index(item)
        assert src.scores[row] == out.scores[r] and (src.reasons[row] == out.reasons[r]).all()
        assert src.sources[row] == out.sources[r]
    first = teams[:10]
    assert abs(first.count(0) - first.count(1)) <= 1  # a draft: each team every other slot
    assert out.meta["interleaved"] == ["v1", "v2"] and "inputs" not in out.meta
    assert out.meta["snapshot"] not in ("v1", "v2")
    # as long as the longer window, each item one of the two placed
    showable = set(c_cat.item_ids[canary.items].tolist()) | (
        set(s_cat.item_ids[stable.items].tolist()) & set(canary_ids))
    assert set(shown) <= showable and len(shown) == 20


def test_the_served_preference_finds_the_preferred_release_and_stays_quiet_on_chance():
    rng = np.random.default_rng(0)

    def pages(n: int, canary_ctr: float, stable_ctr: float) -> list[tuple[list[int], set[int]]]:
        out = []
        for _ in range(n):
            teams = [int(t) for t in rng.permutation([0, 1] * 5)]
            out.append((teams, {p for p, t in enumerate(teams)
                                if rng.random() < (canary_ctr if t else stable_ctr)}))
        return out

    better = preference_of("v2", pages(2000, 0.12, 0.08))
    assert better.winner(0.05) == "canary" and better.credit_share > 0.55
    worse = preference_of("v2", pages(2000, 0.08, 0.12))
    assert worse.winner(0.05) == "stable" and worse.mean < 0
    same = [preference_of("v2", pages(500, 0.1, 0.1)).winner(0.05) for _ in range(20)]
    assert same.count(None) >= 18
    # a click outside the page's slots (a position the page never had) is not credited
    assert preference_of("v2", [([1, 0], {5})]).clicks == {"canary": 0, "stable": 0}
    assert preference_of("v2", []).winner(0.05) is None


def test_interleaving_finds_a_known_difference_with_fewer_users(world):
    """relevance_only has a lower true CTR than control (the simulator's truth): both designs
    find it, and interleaving with a fraction of the users."""
    sim, control, worse = world
    for seed in (0, 1):
        il = interleaved(sim(seed), control, worse, 10, 20_000, seed)
        ab = ab_test(sim(seed + 100), control, worse, 10, 20_000, seed)
        assert il.users is not None and ab.users is not None, (il, ab)
        assert il.effect < 0 and ab.effect < 0  # both point the true way: B is worse
        assert il.users * 2 <= ab.users, (il, ab)


@pytest.mark.slow
def test_interleaving_a_ranker_with_itself_finds_nothing(world):
    """A/A: the coin keeps it fair, so the always-valid test never rejects."""
    sim, control, _ = world
    for seed in (0, 1):
        aa = interleaved(sim(seed), control, control, 10, 3_000, seed)
        assert aa.users is None and abs(aa.effect) < 0.05, aa
