"""A Redis outage under load: what clients see while it is down and how fast it heals.

Two replicas of `novarank serve` (core 1) share a Redis of this benchmark's own (L2 cache,
live counters, invalidations, the telemetry stream; append-only file with fsync always,
as a stream that holds acknowledged events should run). Feeds at 200 req/s go to replica
A (open loop, core 0) and a client posts likes at 20/s, each retried on 503 until it is
acknowledged, while `novarank ingest` drains the stream. Redis is SIGKILLed at 10 s and
started again on the same port at 25 s. Measured:

- feeds by second: answers, 5xx, p99 (the SLO's 100 ms);
- recovery after Redis returns: replica A on L2 again; a like on A invalidating the
  feed replica B holds in L1 (target <= 2 s);
- exactly once: every acknowledged like once in the lake, the refused ones nowhere else;
  every answered feed's request event in the lake (telemetry waited out the outage).

Run: OPENBLAS_NUM_THREADS=1 .venv/bin/python bench/bench_outage.py [--quick]
"""

from __future__ import annotations

import argparse
import asyncio
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections import defaultdict
from pathlib import Path

import aiohttp
import httpx
import numpy as np
import orjson
import pyarrow.parquet as pq

from bench_serving import ADMIN, build_release, pin_self, run, serve, spread, stop
from common import start_redis, write
from novarank.cli.demo_service import free_port
from novarank.launch import loadgen

RATE, LIKES_PER_S = 200, 20
TARGETS = {"error_rate_max": 0.001, "p99_ms_max": 100.0, "invalidation_recovery_s_max": 2.0}


def verdict(r: dict) -> dict[str, bool]:
    """Every target of the run: errors, latency during the outage, recovery, exactly once."""
    return {"error_rate": r["feeds"]["error_rate"] <= TARGETS["error_rate_max"],
            "p99_during_outage": r["feeds"]["p99_ms_during_outage"] <= TARGETS["p99_ms_max"],
            "invalidation_recovery": r["recovery"]["invalidation_s"] is not None
            and r["recovery"]["invalidation_s"] <= TARGETS["invalidation_recovery_s_max"],
            "likes_exactly_once": r["likes"]["in_lake_distinct"] == r["likes"]["acknowledged"]
            and r["likes"]["in_lake_raw"] == r["likes"]["acknowledged"],
            "requests_in_lake": r["telemetry"]["request_events_missing"] == 0
            and r["telemetry"]["answered_feeds"] == r["feeds"]["answered"]}


async def like_client(url: str, users: list[str], item: str, secs: float, out: dict) -> None:
    """Likes with an id each, retried on 503 until acknowledged (what a client should do)."""
    async with aiohttp.ClientSession(url, headers=ADMIN) as s:
        for n in range(int(secs * LIKES_PER_S)):
            t_next = time.monotonic() + 1 / LIKES_PER_S
            body = [{"type": "like", "user_id": users[n % len(users)], "item_id": item,
                     "event_id": f"outage-like-{n}"}]
            while True:
                try:
                    async with s.post("/v1/events", json=body) as r:
                        if r.status == 200:
                            out["acknowledged"] += 1
                            break
                        out["refused"] += 1
                except aiohttp.ClientError:
                    out["refused"] += 1
                await asyncio.sleep(0.2)
            await asyncio.sleep(max(0.0, t_next - time.monotonic()))


async def invalidation_back(a: str, b: str, user: str, item: str) -> bool:
    """A like on A makes B drop the user's cached feed within 0.5 s."""
    async with aiohttp.ClientSession(headers=ADMIN) as s:
        for _ in range(2):
            async with s.get(f"{b}/v1/users/{user}/feed") as r:
                cached = (await r.json())["cache"] == "l1"
        if not cached:
            return False
        async with s.post(f"{a}/v1/events", json=[{
                "type": "like", "user_id": user, "item_id": item,
                "event_id": f"probe-{time.monotonic_ns()}"}]) as r:
            if r.status != 200:
                return False
        deadline = time.monotonic() + 0.5
        while time.monotonic() < deadline:
            async with s.get(f"{b}/v1/users/{user}/feed") as r:
                if (await r.json())["cache"] != "l1":
                    return True
            await asyncio.sleep(0.05)
    return False


async def outage(port: int, workdir: Path, a: str, b: str, users: list[str], item: str,
                 down_at: float, down_for: float, out: dict) -> None:
    await asyncio.sleep(down_at)
    out["redis"].send_signal(signal.SIGKILL)
    await asyncio.to_thread(out["redis"].wait)
    await asyncio.sleep(down_for)
    out["redis"] = await asyncio.to_thread(start_redis, port, workdir)  # off the load's loop
    back = time.monotonic()
    async with aiohttp.ClientSession(headers=ADMIN) as s:
        while out.get("l2_s") is None:
            async with s.get(f"{a}/metrics") as r:
                if "novarank_cache_l2_up 1.0" in await r.text():
                    out["l2_s"] = round(time.monotonic() - back, 3)
            await asyncio.sleep(0.05)
    for n in range(100):
        if await invalidation_back(a, b, users[-1 - n], item):
            out["invalidation_s"] = round(time.monotonic() - back, 3)
            return


def lake_rows(lake: Path, kind: str, column: str = "event_id") -> list[dict]:
    return [r for p in sorted((lake / "events" / kind).rglob("part-*.parquet"))
            for r in pq.read_table(p, columns=[column]).to_pylist()]


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--rounds", type=int, default=3)
    args = ap.parse_args()
    secs, down_at, down_for = (20.0, 5.0, 6.0) if args.quick else (40.0, 10.0, 15.0)
    runs = [one_run(secs, down_at, down_for) for _ in range(1 if args.quick else args.rounds)]
    out = {"rate_rps": RATE, "likes_per_s": LIKES_PER_S, "seconds": secs,
           "redis_down_at_s": down_at, "redis_down_for_s": down_for, "targets": TARGETS,
           "spread": {"p99_ms_during_outage": spread(
                          [r["feeds"]["p99_ms_during_outage"] for r in runs]),
                      "max_ms": spread([r["feeds"]["max_ms"] for r in runs]),
                      "l2_recovery_s": spread([r["recovery"]["l2_s"] for r in runs]),
                      "invalidation_recovery_s": spread(
                          [r["recovery"]["invalidation_s"] or float("inf") for r in runs])},
           "runs": runs}
    out["pass"] = {k: all(r["pass"][k] for r in runs) for k in runs[0]["pass"]}
    write("outage-quick" if args.quick else "outage", out)


def one_run(secs: float, down_at: float, down_for: float) -> dict:
    work = Path(tempfile.mkdtemp(prefix="nr-outage-"))
    port = free_port()
    redis_dir = work / "redis"
    redis_dir.mkdir()
    box: dict = {"redis": start_redis(port, redis_dir), "acknowledged": 0, "refused": 0}
    redis = f"redis://127.0.0.1:{port}/0"
    env = {"NOVARANK_CACHE_URL": redis, "NOVARANK_COUNTERS_URL": redis,
           "NOVARANK_EVENTS_URL": redis, "NOVARANK_KEY_PREFIX": "out:"}
    procs = []
    try:
        users = build_release(work / "rel", 5_000, 1_000, 100_000)
        pa_, a = serve(work / "rel", work, env=env)
        pb_, b = serve(work / "rel", work, env=env)
        procs += [pa_, pb_]
        item = httpx.get(f"{a}/v1/trending", headers=ADMIN).json()["items"][0]["item_id"]
        ingest = subprocess.Popen(
            [sys.executable, "-m", "novarank.cli.main", "ingest", "--redis-url", redis,
             "--lake", str(work / "lake"), "--stream", "out:telemetry"],
            stdout=subprocess.DEVNULL)
        pin_self()
        rng = np.random.default_rng(3)
        picks = rng.zipf(1.3, size=int(RATE * secs) + 1) % len(users)
        by_second: dict[int, list[tuple[float, int | str]]] = defaultdict(list)
        answered_ids: set[str] = set()

        def keep_id(body: bytes) -> None:
            answered_ids.add(orjson.loads(body)["request_id"])

        async def drive() -> loadgen.LoadResult:
            load = loadgen.open_loop(
                a, lambda i: f"/v1/users/{users[picks[i]]}/feed?k=10", RATE, secs,
                headers=ADMIN, tag=keep_id,
                record=lambda t, lat, st: by_second[int(t)].append((lat, st)))
            likes = like_client(a, users[:50], item, secs, box)
            chaos = outage(port, redis_dir, a, b, users, item, down_at, down_for, box)
            result, _, _ = await asyncio.gather(load, likes, chaos)
            return result

        result = run(drive())
        for p in procs:
            stop(p)  # SIGTERM: telemetry buffers are flushed to the stream
        procs = []
        time.sleep(3)  # the ingester drains what the replicas flushed on the way out
        ingest.send_signal(signal.SIGTERM)
        ingest.wait(timeout=30)
        subprocess.run([sys.executable, "-m", "novarank.cli.main", "ingest", "--redis-url",
                        redis, "--lake", str(work / "lake"), "--stream", "out:telemetry",
                        "--until-idle", "--seconds", "60"], check=True,
                       stdout=subprocess.DEVNULL)
        likes = [r["event_id"] for r in lake_rows(work / "lake", "engagement")
                 if r["event_id"].startswith("outage-like-")]
        in_lake = {r["request_id"] for r in lake_rows(work / "lake", "request", "request_id")}
        missing = len(answered_ids - in_lake)
    finally:
        for p in procs:
            stop(p)
        box["redis"].kill()
        shutil.rmtree(work, ignore_errors=True)
    series = []
    for sec in sorted(by_second):
        lat = np.array([x for x, _ in by_second[sec]]) * 1000
        errors = sum(1 for _, st in by_second[sec] if st == "error" or int(st) >= 500)
        series.append({"second": sec, "answers": len(lat), "errors_5xx": errors,
                       "p99_ms": round(float(np.percentile(lat, 99)), 2),
                       "redis": "down" if down_at <= sec < down_at + down_for else "up"})
    during = np.concatenate([np.array([x for x, _ in by_second[s]]) for s in by_second
                             if down_at <= s < down_at + down_for]) * 1000
    errors = sum(r["errors_5xx"] for r in series)
    answered = sum(n for st, n in result.statuses.items() if st == 200)
    out = {"feeds": {"sent": result.sent, "answered": answered, "errors_5xx": errors,
                     "error_rate": round(errors / max(result.sent, 1), 5),
                     "p99_ms_during_outage": round(float(np.percentile(during, 99)), 2),
                     "max_ms": round(result.histogram.get_max_value() / 1e3, 2),
                     "statuses": {str(k): v for k, v in result.statuses.items()}},
           "recovery": {"l2_s": box.get("l2_s"), "invalidation_s": box.get("invalidation_s")},
           "likes": {"acknowledged": box["acknowledged"], "refused_then_retried": box["refused"],
                     "in_lake_raw": len(likes), "in_lake_distinct": len(set(likes))},
           "telemetry": {"answered_feeds": len(answered_ids), "request_events_missing": missing},
           "by_second": series}
    out["pass"] = verdict(out)
    return out


if __name__ == "__main__":
    main()
