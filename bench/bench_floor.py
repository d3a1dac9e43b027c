"""The cached feed against the server's floor, and its latency from light load to
saturation.

Three servers on one uvicorn (uvloop, httptools), each pinned to core 1 with the load on
core 0: a bare ASGI app returning a body of the feed's exact size (bench/bare_app.py),
and novarank's `/healthz` and cached feed (5,000 users warmed, asked in turn: L1 hits),
all with their
telemetry, metrics and request ids. Capacity is wrk's (closed loop, 32 connections),
alternated `--rounds` times; the latency curve is the open-loop load generator
(coordinated omission corrected; it keeps 8,000 req/s from one core) at rising rates to
past saturation, the bare app and the feed in turn at each rate, so the feed's tail is
read against the floor's own on the same machine at the same moment.

Run: OPENBLAS_NUM_THREADS=1 .venv/bin/python bench/bench_floor.py  (needs `wrk`)
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import httpx

from bench_serving import ADMIN, build_release, open_loop, pin_self, run, serve, spread, stop
from common import rotation, start_pinned, write
from novarank.cli.demo_service import free_port

HERE = Path(__file__).parent
RATES = (500, 1_000, 2_000, 4_000, 6_000, 8_000)  # to past the feed's saturation
TARGETS = {"capacity_ratio_min": 0.4, "p99_ms_at_1000_max": 3.0}


def wrk(url: str, secs: float, headers: dict[str, str], script: Path | None = None,
        connections: int = 32) -> float:
    """Requests per second, closed loop: wrk pinned to core 0, one thread, `connections`
    connections; `script` (Lua) makes the requests when given."""
    cmd = ["wrk", "-t1", f"-c{connections}", f"-d{secs:g}s", url]
    for name, value in headers.items():
        cmd[1:1] = ["-H", f"{name}: {value}"]
    if script is not None:
        cmd[1:1] = ["-s", str(script)]
    if shutil.which("taskset"):
        cmd = ["taskset", "-c", "0", *cmd]
    out = subprocess.run(cmd, capture_output=True, text=True, check=True).stdout
    found = re.search(r"Requests/sec:\s+([\d.]+)", out)
    if found is None:
        raise RuntimeError(f"wrk printed no rate:\n{out}")
    errors = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    if errors:
        raise RuntimeError(f"{errors.group(1)} non-2xx answers from {url}")
    return float(found.group(1))


def bare(size: int) -> tuple[subprocess.Popen, str]:
    port = free_port()
    cmd = [sys.executable, "-m", "uvicorn", "bare_app:app", "--port", str(port),
           "--log-level", "warning", "--no-access-log"]
    url = f"http://127.0.0.1:{port}"
    return start_pinned(cmd, url + "/", cwd=HERE,
                        env={**os.environ, "NOVARANK_BARE_BYTES": str(size)}), url


def verdict(ratio: float, p99_at_1000: float) -> dict[str, bool]:
    return {"capacity_ratio": ratio >= TARGETS["capacity_ratio_min"],
            "p99_at_1000rps": p99_at_1000 <= TARGETS["p99_ms_at_1000_max"]}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--secs", type=float, default=6.0)
    args = ap.parse_args()
    if shutil.which("wrk") is None:
        raise SystemExit("wrk is not installed (apt-get install wrk)")
    pin_self()
    work = Path(tempfile.mkdtemp(prefix="nr-bench-floor-"))
    try:
        users = build_release(work / "release", 20_000, 5_000, 1_500_000)
        proc, url = serve(work / "release", work)
        try:
            httpx.post(url + "/v1/admin/cache/warm", headers=ADMIN,
                       timeout=600).raise_for_status()
            hot = users[:5_000]
            feed_url = f"{url}/v1/users/{hot[0]}/feed?k=10"
            size = len(httpx.get(feed_url, headers=ADMIN).content)
            # every hot user in turn, as the open loop below: one user's page alone stays
            # in the CPU's caches and reads 1.5-2x the capacity
            every = rotation(work, "feed", "/v1/users/{u}/feed?k=10", hot, ADMIN)
            floor_proc, floor_url = bare(size)
            caps: dict[str, list[float]] = {"bare": [], "healthz": [], "feed": []}
            curve = []
            try:
                for _ in range(args.rounds):
                    caps["bare"].append(wrk(floor_url + "/", args.secs, {}))
                    caps["healthz"].append(wrk(url + "/healthz", args.secs, ADMIN))
                    caps["feed"].append(wrk(url, args.secs, {}, every))
                for rate in RATES:
                    floor = run(open_loop(floor_url, lambda i: "/", rate, args.secs)).summary()
                    r = run(open_loop(url, lambda i: f"/v1/users/{hot[i % len(hot)]}/feed?k=10",
                                      rate, args.secs)).summary()
                    curve.append({"rate": rate, "p50_ms": r["p50_ms"], "p99_ms": r["p99_ms"],
                                  "late_ratio": r["late_ratio"], "errors": r["errors"],
                                  "achieved_rps": r["achieved_rps"],
                                  "floor_p50_ms": floor["p50_ms"],
                                  "floor_p99_ms": floor["p99_ms"]})
            finally:
                stop(floor_proc)
        finally:
            stop(proc)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    ratios = [f / b for f, b in zip(caps["feed"], caps["bare"], strict=True)]
    at_1000 = next(c for c in curve if c["rate"] == 1_000)
    write("floor", {"body_bytes": size, "rounds": args.rounds, "seconds": args.secs,
                    "capacity_rps": {k: spread(v) for k, v in caps.items()},
                    "feed_vs_bare": spread(ratios), "curve": curve, "targets": TARGETS,
                    "pass": verdict(spread(ratios)["median"], at_1000["p99_ms"])})


if __name__ == "__main__":
    main()
