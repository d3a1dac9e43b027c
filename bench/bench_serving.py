"""Serving benchmarks over real HTTP with an open-loop load generator.

The service runs as `novarank serve` pinned to core 1, the load generator on core 0.
The L1-hit figures sit next to /bench/users/{id}/echo of the same app (the feed's path
shape and hand-parsed parameters, the same body size, no cache or ranking), alternated in
the same run. The hit rate is measured under pressure: L1 below the working set, a replay
longer than the feed TTL, likes invalidating feeds, newcomers reported apart.

Run: OPENBLAS_NUM_THREADS=1 .venv/bin/python bench/bench_serving.py [--quick]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from functools import partial
from pathlib import Path

import httpx
import numpy as np
import orjson

from common import start_pinned, write
from novarank.cli.demo_service import TOKEN, free_port
from novarank.config import TrainConfig
from novarank.data.synthetic import SyntheticConfig, generate
from novarank.launch import loadgen
from novarank.release import save_release
from novarank.training import fit_model

ADMIN = {"Authorization": f"Bearer {TOKEN}"}
# every request carries a key, as in production (the admin token: its check costs what any
# key's does, one dict lookup once seen); the echo ceiling checks it too
closed_loop = partial(loadgen.closed_loop, headers=ADMIN)
open_loop = partial(loadgen.open_loop, headers=ADMIN)
REDIS = os.environ.get("NOVARANK_BENCH_REDIS", "redis://127.0.0.1:6379/14")


def build_release(out: Path, users: int, items: int, events: int) -> list[str]:
    data = generate(SyntheticConfig(users=users, items=items, creators=max(50, items // 50),
                                    events=events, days=60, seed=21))
    model = fit_model(data.dataset, TrainConfig(als_iterations=5, tune=False))
    save_release(model, out)
    sizes = np.diff(model.hist_indptr)
    order = np.argsort(-sizes, kind="stable")
    return [str(model.user_ids[u]) for u in order]  # most active first


def serve(release: Path, work: Path, *, workers: int = 1, cores: str = "1",
          env: dict[str, str] | None = None) -> tuple[subprocess.Popen, str]:
    port = free_port()
    full = {**os.environ, "NOVARANK_STATE_URL": f"sqlite:///{work}/state-{port}.db",
            "NOVARANK_EVENTS_URL": f"file://{work}/lake", "NOVARANK_ADMIN_TOKEN": TOKEN,
            "NOVARANK_BENCH_ROUTES": "true",
            # serving is measured here, not the per-key budgets (tests/test_security.py)
            "NOVARANK_RATE_LIMITS": '{"catalog": 0, "events": 0, "miss": 0}', **(env or {})}
    cmd = [sys.executable, "-m", "novarank.cli.main", "serve", "--release", str(release),
           "--port", str(port), "--workers", str(workers)]
    url = f"http://127.0.0.1:{port}"
    return start_pinned(cmd, url + "/readyz", cores=cores, env=full), url


def stop(proc: subprocess.Popen) -> None:
    proc.terminate()
    try:
        proc.wait(timeout=30)
    except subprocess.TimeoutExpired:
        proc.kill()


def cache_tag(body: bytes) -> str | None:
    try:
        return orjson.loads(body).get("cache")
    except orjson.JSONDecodeError:
        return None


def pin_self() -> None:
    if hasattr(os, "sched_setaffinity"):
        os.sched_setaffinity(0, {0})


def run(coro):
    return asyncio.run(coro)


ROUNDS = 3  # each comparison alternates feed and ceiling this many times


def spread(values: list[float]) -> dict[str, float]:
    return {"median": round(float(np.median(values)), 3), "min": round(min(values), 3),
            "max": round(max(values), 3), "runs": len(values)}


def l1_vs_ceiling(url: str, hot: list[str], secs: float, rounds: int) -> dict:
    """Feed L1 hits against the echo route (same path shape, hand-parsed parameters and
    routing lookup, same body size), alternated `rounds` times in one run."""
    sample = httpx.get(url + f"/v1/users/{hot[0]}/feed?k=10", headers=ADMIN).content
    size = len(sample)
    echo_size = len(httpx.get(url + f"/bench/users/{hot[0]}/echo?size={size}").content)
    size += size - echo_size  # pad the echo body to the feed's exact size
    feed_path = lambda i: f"/v1/users/{hot[i % len(hot)]}/feed?k=10"  # noqa: E731
    echo_path = lambda i: f"/bench/users/{hot[i % len(hot)]}/echo?size={size}"  # noqa: E731
    caps, feeds, ceils = [], [], []
    for _ in range(rounds):
        ceiling = run(closed_loop(url, echo_path, 32, secs))
        hits = run(closed_loop(url, feed_path, 32, secs))
        caps.append((hits["rps"], ceiling["rps"]))
    for _ in range(rounds):
        ceils.append(run(open_loop(url, echo_path, 1_000, secs)).summary())
        feeds.append(run(open_loop(url, feed_path, 1_000, secs, tag=cache_tag)).summary())
    return {"response_bytes": len(sample),
            "echo_bytes": len(httpx.get(url + echo_path(0)).content),
            "feed_capacity_rps": spread([f for f, _ in caps]),
            "ceiling_capacity_rps": spread([c for _, c in caps]),
            "throughput_ratio": spread([f / c for f, c in caps]),
            "open_loop_1000rps": {"feed_p99_ms": spread([f["p99_ms"] for f in feeds]),
                                  "feed_p50_ms": spread([f["p50_ms"] for f in feeds]),
                                  "ceiling_p99_ms": spread([c["p99_ms"] for c in ceils]),
                                  "ceiling_p50_ms": spread([c["p50_ms"] for c in ceils]),
                                  "feed_runs": feeds, "ceiling_runs": ceils}}


def _metric(url: str, name: str) -> float:
    for line in httpx.get(url + "/metrics").text.splitlines():
        if line.startswith(name + " "):
            return float(line.split()[1])
    return 0.0


def cache_pressure(work: Path, users: list[str], warm: dict, quick: bool) -> dict:
    """The hit rate a user of the cache would see: L1 holds a third of the warm plan, the
    replay lasts three feed TTLs, likes invalidate feeds while it runs, and newcomers (10%
    of requests, users the release never saw) are reported apart from release users."""
    l1_bytes, ttl = max(1 << 20, warm["bytes"] // 3), 20.0
    proc, url = serve(work / "small", work, env={"NOVARANK_L1_MAX_BYTES": str(l1_bytes),
                                                 "NOVARANK_FEED_TTL_S": str(ttl)})
    try:
        manifest = httpx.post(url + "/v1/admin/cache/warm", headers=ADMIN, timeout=600).json()
        rng = np.random.default_rng(3)
        newcomers = [f"newcomer-{i}" for i in range(len(users) // 4)]
        population = users + newcomers
        rate, seconds = 500, (3 * ttl if not quick else ttl)
        n_req = int(rate * seconds)

        def zipf(n: int, size: int) -> np.ndarray:
            p = 1.0 / np.arange(1, n + 1) ** 1.05
            return rng.choice(n, size, p=p / p.sum())

        is_new = rng.random(n_req) < 0.10
        draws = np.where(is_new, len(users) + zipf(len(newcomers), n_req),
                         zipf(len(users), n_req))
        likers = zipf(len(users), int(seconds * 20))  # 20 likes/s from the same Zipf users
        stop_likes, likes = threading.Event(), [0]

        def like() -> None:
            with httpx.Client(base_url=url, headers=ADMIN, timeout=10) as c:
                for u in likers:
                    if stop_likes.wait(0.05):
                        return
                    user = users[u]
                    feed = c.get(f"/v1/users/{user}/feed?k=10").json()
                    c.post("/v1/events", json=[{"type": "like", "user_id": user,
                                                "item_id": feed["items"][0]["item_id"],
                                                "request_id": feed["request_id"]}])
                    likes[0] += 1

        def tag(body: bytes) -> str | None:
            try:
                b = orjson.loads(body)
            except orjson.JSONDecodeError:
                return None
            who = "new" if str(b.get("user_id", "")).startswith("newcomer-") else "known"
            return f"{who}:{b.get('cache')}"

        evictions0 = _metric(url, "novarank_cache_evictions")
        liker = threading.Thread(target=like, daemon=True)
        liker.start()
        replay = run(open_loop(url, lambda i: f"/v1/users/{population[draws[i]]}/feed?k=10",
                               rate, n_req / rate, tag=tag))
        stop_likes.set()
        liker.join(timeout=10)
        tags = dict(replay.headers)

        def rate_of(who: str) -> float | None:
            hit = tags.get(f"{who}:l1", 0) + tags.get(f"{who}:l2", 0)
            n = hit + tags.get(f"{who}:miss", 0)
            return round(hit / n, 4) if n else None

        return {"l1_max_bytes": l1_bytes, "warm_plan_bytes": warm["bytes"],
                "feed_ttl_s": ttl, "replay_s": seconds, "requests": n_req,
                "zipf_exponent": 1.05, "newcomer_share": 0.10, "likes_during_replay": likes[0],
                "warm_manifest": manifest, "by_user_and_level": tags,
                "hit_rate_release_users": rate_of("known"), "hit_rate_newcomers": rate_of("new"),
                "l1_evictions": int(_metric(url, "novarank_cache_evictions") - evictions0),
                "load": replay.summary()}
    finally:
        stop(proc)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--quick", action="store_true", help="smaller and shorter (smoke run)")
    args = ap.parse_args()
    q = args.quick
    pin_self()
    work = Path(tempfile.mkdtemp(prefix="nr-bench-"))
    out: dict = {"layout": "service pinned to core 1 (one worker unless stated), "
                           "load generator on core 0"}
    try:
        # ---- L1 hits vs the framework ceiling -------------------------------------------
        users = build_release(work / "small", 20_000 if not q else 3_000, 5_000 if not q
                              else 1_000, 1_500_000 if not q else 100_000)
        proc, url = serve(work / "small", work)
        try:
            warm = httpx.post(url + "/v1/admin/cache/warm", headers=ADMIN, timeout=600).json()
            out["l1_hit"] = l1_vs_ceiling(url, users[:5_000], 3 if q else 8, ROUNDS)
            out["l1_hit"]["warm_manifest"] = warm
        finally:
            stop(proc)
        # ---- hit rate under pressure ---------------------------------------------------------
        out["cache_pressure"] = cache_pressure(work, users, warm, q)

        # ---- full miss at 1M items -----------------------------------------------------------
        big_users = build_release(work / "big", 100_000 if not q else 20_000,
                                  1_000_000 if not q else 100_000,
                                  4_000_000 if not q else 400_000)
        proc, url = serve(work / "big", work)
        try:
            order = np.random.default_rng(5).permutation(len(big_users))
            run(open_loop(url, lambda i: f"/v1/users/{big_users[order[-1 - i]]}/feed?k=10",
                          50, 2))  # warm-up: imports, first-call costs
            miss = run(open_loop(url, lambda i: f"/v1/users/{big_users[order[i]]}/feed?k=10",
                                 200, 20 if not q else 5, tag=cache_tag))
            out["full_miss_1m"] = {"catalog_items": 1_000_000 if not q else 100_000,
                                   "load": miss.summary()}
        finally:
            stop(proc)

        # ---- two workers sharing Redis ----------------------------------------------------------
        import redis

        prefix = f"nrbench{int(time.time())}:"
        proc, url = serve(work / "small", work, workers=2, cores="1",
                          env={"NOVARANK_CACHE_URL": REDIS, "NOVARANK_COUNTERS_URL": REDIS,
                               "NOVARANK_KEY_PREFIX": prefix})
        try:
            pair = run(open_loop(url, lambda i: f"/v1/users/{users[i // 2]}/feed?k=10",
                                 200, 10 if not q else 4, tag=cache_tag))
            t0 = time.perf_counter()
            httpx.put(url + "/v1/admin/toggles", json={"kill_switch": True}, headers=ADMIN)
            consecutive = 0
            while consecutive < 20 and time.perf_counter() - t0 < 10:
                body = httpx.get(url + f"/v1/users/{users[1]}/feed?k=3", headers=ADMIN).json()
                consecutive = consecutive + 1 if body["fallback"] else 0
            effect = time.perf_counter() - t0
            httpx.put(url + "/v1/admin/toggles", json={"kill_switch": False}, headers=ADMIN)
            out["two_workers_redis"] = {
                "by_cache_level": dict(pair.headers), "load": pair.summary(),
                "toggle_effect_on_all_workers_s": round(effect, 3),
                "toggle_effect_rule": "20 consecutive fallback responses"}
        finally:
            stop(proc)
            r = redis.Redis.from_url(REDIS)
            for key in r.scan_iter(match=prefix + "*"):
                r.delete(key)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    ratio = out["l1_hit"]["throughput_ratio"]["median"]
    out["targets"] = {"l1_throughput_ratio_min": 0.7, "l1_p99_ms_at_1000rps_max": 10,
                      "miss_1m_p95_ms_at_200rps_max": 10,
                      "hit_rate_under_pressure_min": 0.95}
    out["pass"] = {
        "l1_throughput_ratio": ratio >= 0.7,
        "l1_p99_at_1000rps": out["l1_hit"]["open_loop_1000rps"]["feed_p99_ms"]["median"] <= 10,
        "miss_1m_p95_at_200rps": out["full_miss_1m"]["load"]["p95_ms"] <= 10,
        "hit_rate_under_pressure": out["cache_pressure"]["hit_rate_release_users"] >= 0.95,
        "l2_hit_seen": out["two_workers_redis"]["by_cache_level"].get("l2", 0) > 0,
        "toggle_within_2s": out["two_workers_redis"]["toggle_effect_on_all_workers_s"] <= 2.0,
    }
    write("serving" if not q else "serving-quick", out)


if __name__ == "__main__":
    main()
