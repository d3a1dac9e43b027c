"""Users needed to find a known quality difference: team-draft interleaving vs an A/B test
on CTR, the same simulated population, both by an always-valid test read every 50 users.

On the calibrated synthetic world the control ranker is compared with two rerankings whose
true CTR the simulator knows (relevance only: a little worse; trending only: much worse),
and with itself (A/A: how often each design cries wolf).

Run: OPENBLAS_NUM_THREADS=1 .venv/bin/python bench/bench_interleaving.py [--seeds 20]
"""

from __future__ import annotations

import argparse
import time

import numpy as np

from bench_offpolicy import rankers
from common import write
from novarank.config import TrainConfig
from novarank.data.synthetic import SyntheticConfig, generate
from novarank.launch.interleaving import ab_test, interleaved
from novarank.launch.simulator import Simulator
from novarank.ranking.recommender import Recommender
from novarank.training import fit_model

CANDIDATES = ("relevance_only", "trending_only")
SUBTLE = "relevance_only"


def _spread(xs: list[int | None], cap: int) -> dict:
    found = [x for x in xs if x is not None]
    return {"median": float(np.median([x if x is not None else cap for x in xs])),
            "min": min(found) if found else None, "max": max(found) if found else None,
            "detected": len(found), "runs": len(xs)}


def verdict(r: dict) -> dict[str, bool]:
    """Interleaving finds each known difference in every run, the right way round and with
    no more users than the A/B test (medians); on the subtle one (relevance only: a few
    percent of CTR) with at least 2x fewer; and its A/A runs stay quiet at about the test's
    level (at most 10% of runs). A large difference both designs find at the first looks
    cannot show a ratio, only that neither is slower."""
    out = {}
    for cand in CANDIDATES:
        c = r["candidates"][cand]
        il, ab = c["interleaving"], c["ab"]
        out[f"{cand}_found"] = (il["detected"] == il["runs"] and c["right_way"]
                                and il["median"] <= ab["median"])
    subtle = r["candidates"][SUBTLE]
    out["fewer_users_on_the_subtle_difference"] = (
        subtle["interleaving"]["median"] * 2 <= subtle["ab"]["median"])
    aa = r["aa"]
    out["aa_quiet"] = aa["detected"] <= 0.1 * aa["runs"]
    return out


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--seeds", type=int, default=20)
    ap.add_argument("--max-users", type=int, default=30_000)
    a = ap.parse_args()
    t0 = time.perf_counter()
    world = generate(SyntheticConfig())
    ds = world.dataset
    ranks = rankers(Recommender(fit_model(ds, TrainConfig(tune=False))))

    def sim(seed: int) -> Simulator:
        return Simulator(world.truth, ds.items.ids.tolist(), ds.user_ids.tolist(),
                         ds.history_sizes(), seed=seed)

    truth_sim = sim(10_000)
    truth_users = [truth_sim.pick_user() for _ in range(3000)]

    def true_ctr(name: str) -> float:
        return float(np.mean([truth_sim.seen_probs(u, ranks[name](u, 10)).mean()
                              for u in truth_users]))

    out: dict = {"world": SyntheticConfig().__dict__, "seeds": a.seeds,
                 "max_users": a.max_users, "every": 50, "alpha": 0.05, "candidates": {}}
    base = true_ctr("control")
    for cand in CANDIDATES:
        il, ab, right = [], [], []
        for seed in range(a.seeds):
            i = interleaved(sim(seed), ranks["control"], ranks[cand], 10, a.max_users, seed)
            b = ab_test(sim(seed + 1000), ranks["control"], ranks[cand], 10, a.max_users, seed)
            il.append(i.users)
            ab.append(b.users)
            right.append((i.effect < 0) == (true_ctr(cand) < base))
            print(cand, seed, i.users, b.users, flush=True)
        out["candidates"][cand] = {
            "true_ctr": round(true_ctr(cand), 5), "control_true_ctr": round(base, 5),
            "interleaving": _spread(il, a.max_users), "ab": _spread(ab, a.max_users),
            "right_way": all(right)}
    aa = [interleaved(sim(seed + 2000), ranks["control"], ranks["control"], 10,
                      min(a.max_users, 5000), seed).users for seed in range(a.seeds)]
    out["aa"] = _spread(aa, min(a.max_users, 5000))
    out["pass"] = verdict(out)
    out["seconds"] = round(time.perf_counter() - t0, 1)
    write("interleaving", out)


if __name__ == "__main__":
    main()
