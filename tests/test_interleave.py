"""Team-draft interleaving: a fair merge of two pages, and on the simulator a known
difference found with far fewer users than an A/B test needs."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from novarank.config import TrainConfig, Weights
from novarank.data.synthetic import SyntheticConfig, generate
from novarank.launch.interleaving import ab_test, interleaved
from novarank.launch.offpolicy import ranker_of
from novarank.launch.simulator import Simulator
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
