"""Counterfactual CTR estimates against the simulator's truth, and what exploration costs.

On the calibrated synthetic world (and the MovieLens-100K calibration beside it), the
control ranker serves simulated users with exploration on; for each seed, the CTR of a
better, an equal and a worse candidate (reorderings of the logged window: full support),
and of two real rerankings (relevance only, trending only: partial support) is estimated
from the logs by IPS, SNIPS and DR and compared with its true CTR on the same requests.

Run: OPENBLAS_NUM_THREADS=1 .venv/bin/python bench/bench_offpolicy.py [--seeds 30]
"""

from __future__ import annotations

import argparse
import time
from collections import defaultdict
from pathlib import Path

import numpy as np

from common import write
from novarank.config import TrainConfig, Weights
from novarank.data.loaders import load
from novarank.data.synthetic import SyntheticConfig, generate
from novarank.evaluation.calibration import differences, profile
from novarank.launch.offpolicy import (
    Ranker,
    Trial,
    coverage,
    log_pages,
    ranker_of,
    reordered,
    trial,
)
from novarank.launch.simulator import Simulator
from novarank.model import Model
from novarank.ranking.explore import Exploration
from novarank.ranking.recommender import Recommender
from novarank.training import fit_model

FULL_SUPPORT = ("better", "equal", "worse")
TARGET_COVERAGE = 0.9  # of 95% intervals, candidates with full support


def rankers(rec: Recommender) -> dict[str, Ranker]:
    def make(**w: float) -> Ranker:
        return ranker_of(rec, np.asarray(Weights(**w).vector(), np.float32))
    return {"control": make(),
            "relevance_only": make(freshness=0, trending=0, affinity=0, quality=0),
            "trending_only": make(relevance=0, freshness=0, trending=1, affinity=0, quality=0)}


ESTIMATORS = ("ips", "snips", "dr", "pbm")


def verdict(trials: list[dict], target: float = TARGET_COVERAGE) -> dict[str, bool]:
    """Per estimator: do the 95% intervals of full-support candidates cover the truth at
    least `target` of the time?"""
    full = [t for t in trials if t["candidate"] in FULL_SUPPORT]
    names = sorted({e for t in full for e in t["covered"]})
    return {e: bool(full) and sum(t["covered"][e] for t in full) / len(full) >= target
            for e in names}


def _row(t: Trial, seed: int) -> dict:
    return {"seed": seed, "candidate": t.candidate, "truth": round(t.truth, 5),
            "covered": {e: t.covered(e) for e in t.estimates},
            "estimates": {e: x.to_dict() for e, x in t.estimates.items()}}


def feed_latency(model: Model, users: list[str], epsilon: float, window: int,
                 rounds: int = 3, n: int = 4000) -> dict[str, dict[str, float]]:
    """First-page latency through the served feed path (in process, L1 warm), exploration
    off and on, in alternating rounds over the same users."""
    import tempfile

    from novarank.online.service import open_local
    from novarank.release import save_release

    with tempfile.TemporaryDirectory() as tmp:
        save_release(model, Path(tmp) / "r", version="r")
        services = {"off": open_local(Path(tmp) / "r", at="release"),
                    "on": open_local(Path(tmp) / "r", at="release",
                                     exploration_epsilon=epsilon, exploration_window=window)}
        rng = np.random.default_rng(0)
        sample = [users[int(i)] for i in rng.integers(0, len(users), n)]
        times: dict[str, list[float]] = {"off": [], "on": []}
        for svc in services.values():
            for u in set(sample):
                svc.feeds.feed(u, k=10)  # warm: every timed call is an L1 hit
        for _ in range(rounds):
            for name, svc in services.items():
                for u in sample:
                    t = time.perf_counter()
                    svc.feeds.feed(u, k=10)
                    times[name].append((time.perf_counter() - t) * 1e6)
        for svc in services.values():
            svc.close()
    return {name: {"p50_us": round(float(np.percentile(v, 50)), 1),
                   "p99_us": round(float(np.percentile(v, 99)), 1)}
            for name, v in times.items()}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--seeds", type=int, default=30)
    ap.add_argument("--requests", type=int, default=5000)
    ap.add_argument("--epsilon", type=float, default=0.2)
    ap.add_argument("--window", type=int, default=30)
    a = ap.parse_args()
    t0 = time.perf_counter()
    cfg = SyntheticConfig()
    world = generate(cfg)
    ds = world.dataset
    synthetic, movielens = profile(ds), profile(load("ml-100k"))
    calibration = {"synthetic": synthetic.to_dict(), "movielens": movielens.to_dict(),
                   "differences": differences(synthetic, movielens)}
    model = fit_model(ds, TrainConfig(tune=False))
    rec = Recommender(model)
    ranks = rankers(rec)
    latency = feed_latency(model, ds.user_ids[:2000].tolist(), a.epsilon, a.window)
    print("latency", latency, flush=True)
    ex, k = Exploration(a.epsilon, a.window), 10
    rows: list[dict] = []
    cost: dict[str, list[float]] = defaultdict(list)
    for seed in range(a.seeds):
        sim = Simulator(world.truth, ds.items.ids.tolist(), ds.user_ids.tolist(),
                        ds.history_sizes(), seed=seed)
        users, pages, logged_ctr = log_pages(sim, ranks["control"], ex, a.requests, k, seed)
        cands = {"better": reordered(sim, ranks["control"], a.window, "truth"),
                 "equal": ranks["control"],
                 "worse": reordered(sim, ranks["control"], a.window, "tail"),
                 "relevance_only": ranks["relevance_only"],
                 "trending_only": ranks["trending_only"]}
        trials = trial(sim, users, pages, cands, k)
        rows += [_row(t, seed) for t in trials]
        cost["logged_ctr"].append(logged_ctr)
        cost["deterministic_ctr"].append(next(t.truth for t in trials if t.candidate == "equal"))
        print(f"seed {seed}: {coverage(trials)}", flush=True)
    rng = np.random.default_rng(0)
    window = [f"i{j}" for j in range(100)]
    n = 200_000
    t = time.perf_counter()
    for _ in range(n):
        ex.serve(window, k, rng)
    serve_us = (time.perf_counter() - t) / n * 1e6
    summary: dict[str, dict] = {}
    for cand in cands:
        mine = [r for r in rows if r["candidate"] == cand]
        summary[cand] = {
            "truth_mean": round(float(np.mean([r["truth"] for r in mine])), 5),
            "support": round(float(np.mean([r["estimates"]["ips"]["support"] for r in mine])), 3),
            **{e: {"coverage": round(float(np.mean([r["covered"][e] for r in mine])), 3),
                   "mean_error": round(float(np.mean([r["estimates"][e]["ctr"] - r["truth"]
                                                      for r in mine])), 5),
                   "ci_width": round(float(np.mean([r["estimates"][e]["ci95"][1]
                                                    - r["estimates"][e]["ci95"][0]
                                                    for r in mine])), 5)}
               for e in ESTIMATORS}}
    det, logged = float(np.mean(cost["deterministic_ctr"])), float(np.mean(cost["logged_ctr"]))
    write("offpolicy", {
        "world": cfg.__dict__, "calibration": calibration, "seeds": a.seeds,
        "requests": a.requests, "epsilon": a.epsilon, "window": a.window, "k": k,
        "summary": summary, "trials": rows,
        "exploration_cost": {"deterministic_ctr": round(det, 5), "logged_ctr": round(logged, 5),
                             "relative_ctr_loss": round(1 - logged / det, 4),
                             "serve_us_per_page": round(serve_us, 2),
                             "first_page_latency": latency},
        "target_coverage": TARGET_COVERAGE, "pass": verdict(rows),
        "seconds": round(time.perf_counter() - t0, 1)})


if __name__ == "__main__":
    main()
