"""In-process latency of a user's first page of 10, all five signals, at 1M catalog items.

Builds a synthetic catalog of 1M items, fits every component, locks it as a release and
opens it with `open_local`: the feed path HTTP serves (online/feeds.py), minus HTTP. For
>= 1,000 users on one thread it times a miss (`refresh`: profile from the state store,
rank a `feed_window` of 200, cache it, render the page) and then the L1 hit of the same
page. A brute-force float32 scan of all item factors is timed in the same run for scale.

Run: OPENBLAS_NUM_THREADS=1 .venv/bin/python bench/bench_latency.py [--items 1000000]
"""

from __future__ import annotations

import argparse
import tempfile
import time

import numpy as np
from threadpoolctl import threadpool_limits

from common import peak_rss_mb, write
from novarank.config import TrainConfig
from novarank.data.synthetic import SyntheticConfig, generate
from novarank.online.service import open_local
from novarank.release.bundle import save_release
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
    tmp = tempfile.TemporaryDirectory(prefix="nr-bench-latency-")
    save_release(model, f"{tmp.name}/release", version="bench")
    service = open_local(f"{tmp.name}/release", at="release")
    release_s = time.perf_counter() - t
    rec = service.rec
    faiss.omp_set_num_threads(1)
    rng = np.random.default_rng(0)
    sizes = np.diff(model.hist_indptr)
    known = np.flatnonzero(sizes > 0)
    users = [str(model.user_ids[u]) for u in rng.choice(known, args.users, replace=False)]
    users += [f"cold-{i}" for i in range(args.users // 10)]
    feeds = service.feeds
    miss, hit, fill, n_cands = [], [], [], []
    with threadpool_limits(1):
        for u in users[:50]:  # warm-up
            feeds.feed(u, 10, refresh=True)
        for u in users:
            t0 = time.perf_counter_ns()
            page = feeds.feed(u, 10, refresh=True)
            miss.append((time.perf_counter_ns() - t0) / 1e6)
            t0 = time.perf_counter_ns()
            again = feeds.feed(u, 10)
            hit.append((time.perf_counter_ns() - t0) / 1e6)
            assert again.cache == "l1" and page.cache == "miss", (again.cache, page.cache)
            fill.append(len(page.items) / 10)
        for u in users[:200]:
            p = rec.profile(u)
            n_cands.append(len(rec.candidates(p, rec.neighbour_scores(p))))
        brute = []
        for u in rng.choice(known, 200, replace=False):
            t0 = time.perf_counter_ns()
            s = model.als_items @ model.als_users[u]
            np.argpartition(-s, 10)[:10]
            brute.append((time.perf_counter_ns() - t0) / 1e6)
    index = rec.index
    service.close()
    tmp.cleanup()
    write("latency", {
        "catalog_items": model.n_items, "users_timed": len(users),
        "cold_users_timed": args.users // 10, "events": data.dataset.n_events,
        "generate_s": round(gen_s, 1), "fit_s": round(fit_s, 1),
        "release_s": round(release_s, 1), "index": "exact" if index.exact else "faiss IVF-flat",
        "path": "open_local -> FeedPath.feed (the HTTP feed path without HTTP)",
        "feed_window": service.settings.feed_window,
        "top10_ms": {"p50": pct(miss, 50), "p95": pct(miss, 95), "p99": pct(miss, 99),
                     "max": round(max(miss), 3)},
        "l1_hit_ms": {"p50": pct(hit, 50), "p99": pct(hit, 99)},
        "candidates_per_user": {"p50": pct(n_cands, 50), "p99": pct(n_cands, 99)},
        "fill_rate": float(np.mean(fill)),
        "brute_force_scan_ms": {"p50": pct(brute, 50), "p99": pct(brute, 99)},
        "targets": {"top10_p99_ms_max": 5.0}, "pass": pct(miss, 99) <= 5.0,
        "peak_rss_mb": peak_rss_mb(),
    })


if __name__ == "__main__":
    main()
