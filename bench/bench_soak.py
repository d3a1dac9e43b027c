"""Memory at constant load: does the service's RSS level off below its configured bounds?

One `novarank serve` (embedded default: L1 only, SQLite state, file lake) on core 1 with
L1 bounded to 64 MB and prepared repeats (online/prepared.py) to 16 MB, fed for
`--minutes` (default 30) by an open loop on core 0: feeds at
300 req/s (90% release users, Zipf; 10% newcomers never seen before, so per-user state
keeps meeting new ids), likes at 20/s (each one stored, invalidating, re-ranked ahead),
and a catalog upsert a second. RSS and L1 bytes are scraped from /metrics every 10 s.

Pass: RSS in the last third of the run grows by at most 5% (levelled off), and never
exceeds the RSS at start + the L1 and prepared byte bounds + a fixed allowance of 128 MB (allocator
fragmentation, the telemetry buffer, thread stacks, the search index); no 5xx.

Run: OPENBLAS_NUM_THREADS=1 .venv/bin/python bench/bench_soak.py [--minutes 30]
"""

from __future__ import annotations

import argparse
import asyncio
import shutil
import tempfile
import time
from pathlib import Path

import aiohttp
import numpy as np

from bench_serving import ADMIN, build_release, pin_self, run, serve, stop
from common import write
from novarank.launch import loadgen
from novarank.launch.baseline import parse_metrics

RATE, LIKES_PER_S = 300, 20
L1_BYTES = 64 << 20
PREPARED_BYTES = 16 << 20
ALLOWANCE_MB = 128.0
PLATEAU_GROWTH_MAX = 0.05


def verdict(r: dict) -> dict[str, bool]:
    """Levelled off (last third), within the bound, and no server errors."""
    rss = [s["rss_mb"] for s in r["samples"]]
    third = rss[len(rss) * 2 // 3:]
    return {"levelled_off": len(third) >= 2 and max(third) <= third[0] * (
                1 + PLATEAU_GROWTH_MAX),
            "within_bound": max(rss) <= r["bound_mb"],
            "no_errors": r["feeds"]["errors"] == 0}


async def sample(url: str, until: float, out: list[dict], t0: float) -> None:
    async with aiohttp.ClientSession() as s:
        while time.monotonic() < until:
            async with s.get(f"{url}/metrics") as r:
                m = parse_metrics(await r.text())
            out.append({"t_s": round(time.monotonic() - t0, 1),
                        "rss_mb": round(m["process_resident_memory_bytes"] / 2**20, 1),
                        "l1_mb": round(m.get("novarank_cache_bytes", 0) / 2**20, 1)})
            await asyncio.sleep(10)


async def writes(url: str, users: list[str], items: list[str], until: float) -> dict:
    done = {"likes": 0, "upserts": 0, "errors": 0}
    async with aiohttp.ClientSession(url, headers=ADMIN) as s:
        n = 0
        while time.monotonic() < until:
            n += 1
            body = [{"type": "like", "user_id": users[n % len(users)],
                     "item_id": items[n % len(items)], "event_id": f"soak-{n}"}]
            async with s.post("/v1/events", json=body) as r:
                done["likes" if r.status == 200 else "errors"] += 1
            if n % LIKES_PER_S == 0:
                async with s.put(f"/v1/items/soak-{n % 200}", json={
                        "title": f"soak upload {n}", "creator_id": "c1",
                        "tags": ["soak"]}) as r:
                    done["upserts" if r.status == 200 else "errors"] += 1
            await asyncio.sleep(1 / LIKES_PER_S)
    return done


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--minutes", type=float, default=30.0)
    minutes = ap.parse_args().minutes
    secs = minutes * 60
    work = Path(tempfile.mkdtemp(prefix="nr-soak-"))
    try:
        users = build_release(work / "rel", 20_000, 2_000, 200_000)
        proc, url = serve(work / "rel", work, env={
            "NOVARANK_L1_MAX_BYTES": str(L1_BYTES),
            "NOVARANK_FEED_PREPARED_BYTES": str(PREPARED_BYTES)})
        try:
            pin_self()
            import httpx

            start_rss = parse_metrics(httpx.get(f"{url}/metrics").text)[
                "process_resident_memory_bytes"] / 2**20
            items = [i["item_id"] for i in httpx.get(
                f"{url}/v1/trending", params={"k": 100}, headers=ADMIN).json()["items"]]
            rng = np.random.default_rng(5)
            n = int(RATE * secs)
            known = rng.zipf(1.2, size=n) % len(users)
            fresh = rng.random(n) < 0.10

            def path(i: int) -> str:
                user = f"newcomer-{i}" if fresh[i] else users[known[i]]
                return f"/v1/users/{user}/feed?k=10"

            samples: list[dict] = []

            async def drive() -> tuple[loadgen.LoadResult, dict]:
                t0 = time.monotonic()
                until = t0 + secs
                load, w, _ = await asyncio.gather(
                    loadgen.open_loop(url, path, RATE, secs, headers=ADMIN),
                    writes(url, users, items, until), sample(url, until, samples, t0))
                return load, w

            load, done = run(drive())
        finally:
            stop(proc)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    out = {"minutes": minutes, "feed_rate_rps": RATE, "likes_per_s": LIKES_PER_S,
           "l1_max_mb": L1_BYTES / 2**20, "prepared_max_mb": PREPARED_BYTES / 2**20,
           "allowance_mb": ALLOWANCE_MB,
           "start_rss_mb": round(start_rss, 1),
           "bound_mb": round(start_rss + (L1_BYTES + PREPARED_BYTES) / 2**20 + ALLOWANCE_MB, 1),
           "feeds": load.summary(), "writes": done, "samples": samples,
           "plateau_growth_max": PLATEAU_GROWTH_MAX}
    out["pass"] = verdict(out)
    write("soak" if minutes >= 30 else "soak-short", out)


if __name__ == "__main__":
    main()
