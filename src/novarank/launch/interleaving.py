"""How many users an experiment needs: team-draft interleaving against an A/B test on CTR,
on the same simulated population, both judged by an always-valid test read every
`every` users (analytics/sequential.py), so stopping at the first significant look is
honest for either.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from novarank.analytics.sequential import TAU, mean_difference, two_sided_p
from novarank.launch.offpolicy import Ranker
from novarank.launch.simulator import Simulator
from novarank.ranking.interleave import team_draft

TAU_PREFERENCE = 0.05  # the scale of a per-page preference (-1..1) the test finds fastest


@dataclass(frozen=True)
class Detection:
    design: str
    users: int | None  # users until the test first rejected "no difference"; None: never
    looked_at: int  # users seen (the cap when never)
    effect: float  # the final estimate: mean preference for B, or CTR of B - CTR of A
    p_value: float


def interleaved(sim: Simulator, a: Ranker, b: Ranker, k: int, max_users: int, seed: int,
                alpha: float = 0.05, every: int = 50) -> Detection:
    rng = np.random.default_rng(seed)
    prefs: list[float] = []
    p = 1.0
    for n in range(1, max_users + 1):
        user = sim.pick_user()
        page = team_draft(a(user, k), b(user, k), k, rng)
        prefs.append(-float(page.credit(sim.clicks(user, page.items, rng))))  # + favours B
        if n % every == 0:
            d = np.asarray(prefs)
            var = float(d.var(ddof=1)) / n
            p = two_sided_p(float(d.mean()), var, TAU_PREFERENCE) if var > 0 else 1.0
            if p < alpha:
                return Detection("interleaving", n, n, float(d.mean()), p)
    return Detection("interleaving", None, max_users, float(np.mean(prefs)), p)


def ab_test(sim: Simulator, a: Ranker, b: Ranker, k: int, max_users: int, seed: int,
            alpha: float = 0.05, every: int = 50) -> Detection:
    rng = np.random.default_rng(seed)
    ctr: tuple[list[float], list[float]] = ([], [])
    p, est = 1.0, 0.0
    for n in range(1, max_users + 1):
        user = sim.pick_user()
        arm = int(rng.random() < 0.5)
        page = (a, b)[arm](user, k)
        ctr[arm].append(len(sim.clicks(user, page, rng)) / k)
        if n % every == 0 and min(len(ctr[0]), len(ctr[1])) > 1:
            est, var = mean_difference(ctr[1], ctr[0])
            p = two_sided_p(est, var, TAU["ctr"]) if var > 0 else 1.0
            if p < alpha:
                return Detection("ab", n, n, est, p)
    return Detection("ab", None, max_users, est, p)
