"""In-process latency of one user's top-10 with all five signals at 1M catalog items.

Builds a synthetic catalog of 1M items, fits every component, builds the IVF index,
then times Recommender.recommend() for >= 1,000 users on one thread (no HTTP). A
brute-force float32 scan of all item factors is timed in the same run for scale.

Run: OPENBLAS_NUM_THREADS=1 .venv/bin/python bench/bench_latency.py [--items 1000000]
"""

from __future__ import annotations

import argparse
import time

import numpy as np
from threadpoolctl import threadpool_limits

from common import peak_rss_mb, write
from novarank.config import TrainConfig
from novarank.data.synthetic import SyntheticConfig, generate
from novarank.ranking.recommender import Recommender
from novarank.training import fit_model


def pct(a: list[float], q: float) -> float:
    return round(float(np.percentile(a, q)), 3)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--items", type=int, default=1_000_000)
    ap.add_argument("--users", type=int, default=1_000)
    args = ap.parse_args()
    import faiss

    t = time.perf_counter()
    data = generate(SyntheticConfig(users=100_000, items=args.items, creators=20_000,
                                    events=4_000_000, days=60, seed=5))
    gen_s = time.perf_counter() - t
    t = time.perf_counter()
    model = fit_model(data.dataset, TrainConfig(als_iterations=6, tune=False))
    fit_s = time.perf_counter() - t
    t = time.perf_counter()
    index = model.build_index()
    index_s = time.perf_counter() - t
    rec = Recommender(model, index=index)
    faiss.omp_set_num_threads(1)
    rng = np.random.default_rng(0)
    sizes = np.diff(model.hist_indptr)
    known = np.flatnonzero(sizes > 0)
    users = [str(model.user_ids[u]) for u in rng.choice(known, args.users, replace=False)]
    users += [f"cold-{i}" for i in range(args.users // 10)]
    lat, fill, n_cands = [], [], []
    with threadpool_limits(1):
        for u in users[:50]:  # warm-up
            rec.recommend(u, 10, now=model.as_of)
        for u in users:
            t0 = time.perf_counter_ns()
            feed = rec.recommend(u, 10, now=model.as_of)
            lat.append((time.perf_counter_ns() - t0) / 1e6)
            fill.append(len(feed.items) / 10)
        for u in users[:200]:
            p = rec.profile(u)
            n_cands.append(len(rec.candidates(p, rec.neighbour_scores(p))))
        brute = []
        for u in rng.choice(known, 200, replace=False):
            t0 = time.perf_counter_ns()
            s = model.als_items @ model.als_users[u]
            np.argpartition(-s, 10)[:10]
            brute.append((time.perf_counter_ns() - t0) / 1e6)
    write("latency", {
        "catalog_items": model.n_items, "users_timed": len(users),
        "cold_users_timed": args.users // 10, "events": data.dataset.n_events,
        "generate_s": round(gen_s, 1), "fit_s": round(fit_s, 1), "index_s": round(index_s, 1),
        "index": "exact" if index.exact else "faiss IVF-flat",
        "top10_ms": {"p50": pct(lat, 50), "p95": pct(lat, 95), "p99": pct(lat, 99),
                     "max": round(max(lat), 3)},
        "candidates_per_user": {"p50": pct(n_cands, 50), "p99": pct(n_cands, 99)},
        "fill_rate": float(np.mean(fill)),
        "brute_force_scan_ms": {"p50": pct(brute, 50), "p99": pct(brute, 99)},
        "targets": {"top10_p99_ms_max": 5.0}, "pass": pct(lat, 99) <= 5.0,
        "peak_rss_mb": peak_rss_mb(),
    })


if __name__ == "__main__":
    main()
