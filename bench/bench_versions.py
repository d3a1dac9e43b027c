"""The serving path of two versions side by side: a git revision against the working tree.

Both serve the same release (`novarank serve`, one worker pinned to core 1, the load on
core 0), started in alternation, `--rounds` times each, so drift on the machine lands on
both. Per round: L1-hit capacity (wrk when installed, else the Python closed loop, which
saturates near 5,000 req/s on one core; 32 connections), the L1 hit's p50/p99
open loop at 1,000 req/s, and the miss path (`Cache-Control: no-cache`: every request
ranks) open loop at 200 req/s. The verdict: no regression beyond noise.

Run: OPENBLAS_NUM_THREADS=1 .venv/bin/python bench/bench_versions.py --base <rev>
"""

from __future__ import annotations

import argparse
import shutil
import subprocess
import tempfile
from pathlib import Path

import httpx

from bench_floor import wrk
from bench_serving import (
    ADMIN,
    build_release,
    closed_loop,
    open_loop,
    pin_self,
    run,
    serve,
    spread,
    stop,
)
from common import write

ROOT = Path(__file__).resolve().parents[1]
CAPACITY_TOLERANCE = 0.05  # a median capacity this much below the base's is a regression
P99_TOLERANCE_MS = 0.5  # and a p99 this much above it (open loop at 1,000 req/s)


def checkout(rev: str, into: Path) -> Path:
    """The revision's `src/` (git archive: no worktree, nothing of the repo changes)."""
    into.mkdir(parents=True)
    archive = subprocess.run(["git", "-C", str(ROOT), "archive", rev, "src"],
                             capture_output=True, check=True).stdout
    subprocess.run(["tar", "-x", "-C", str(into)], input=archive, check=True)
    return into / "src"


def measure(release: Path, work: Path, src: Path, users: list[str], secs: float) -> dict:
    proc, url = serve(release, work, env={"PYTHONPATH": str(src)})
    try:
        httpx.post(url + "/v1/admin/cache/warm", headers=ADMIN, timeout=600).raise_for_status()
        hot = users[:5_000]
        feed = lambda i: f"/v1/users/{hot[i % len(hot)]}/feed?k=10"  # noqa: E731
        if shutil.which("wrk"):
            capacity = wrk(url + feed(0), secs, ADMIN)
        else:
            capacity = run(closed_loop(url, feed, 32, secs))["rps"]
        hit = run(open_loop(url, feed, 1_000, secs)).summary()
        miss = run(open_loop(url, feed, 200, secs,
                             headers={**ADMIN, "Cache-Control": "no-cache"})).summary()
        return {"capacity_rps": capacity, "hit_p50_ms": hit["p50_ms"],
                "hit_p99_ms": hit["p99_ms"], "miss_p50_ms": miss["p50_ms"],
                "miss_p95_ms": miss["p95_ms"], "errors": hit["errors"] + miss["errors"]}
    finally:
        stop(proc)


def verdict(base: dict, new: dict) -> dict[str, bool]:
    """Per figure, whether the new version is within noise of the base (medians)."""
    return {
        "capacity": new["capacity_rps"]["median"]
        >= (1 - CAPACITY_TOLERANCE) * base["capacity_rps"]["median"],
        "hit_p99": new["hit_p99_ms"]["median"]
        <= base["hit_p99_ms"]["median"] + P99_TOLERANCE_MS,
        "miss_p95": new["miss_p95_ms"]["median"]
        <= 1.1 * base["miss_p95_ms"]["median"] + P99_TOLERANCE_MS,
        "no_errors": new["errors"]["max"] == 0,
    }


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--base", required=True, help="git revision to compare against")
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--secs", type=float, default=8.0)
    args = ap.parse_args()
    pin_self()
    work = Path(tempfile.mkdtemp(prefix="nr-bench-versions-"))
    sources = {"base": checkout(args.base, work / "base"), "new": ROOT / "src"}
    users = build_release(work / "release", 20_000, 5_000, 1_500_000)
    runs: dict[str, list[dict]] = {"base": [], "new": []}
    for n in range(args.rounds):
        for name in (("base", "new") if n % 2 == 0 else ("new", "base")):
            runs[name].append(measure(work / "release", work, sources[name], users, args.secs))
    summary = {name: {k: spread([r[k] for r in rs]) for k in rs[0]} for name, rs in runs.items()}
    write("versions", {"base_rev": _describe(args.base), "new_rev": _describe("HEAD", tree=True),
                       "rounds": args.rounds, "seconds_per_load": args.secs,
                       "capacity_client": "wrk" if shutil.which("wrk") else "python closed loop",
                       **summary,
                       "runs": runs, "tolerance": {"capacity": CAPACITY_TOLERANCE,
                                                   "p99_ms": P99_TOLERANCE_MS},
                       "pass": verdict(summary["base"], summary["new"])})


def _describe(rev: str, tree: bool = False) -> str:
    """A short commit id; the working tree's gets "+changes" when it differs from it."""
    sha = subprocess.run(["git", "-C", str(ROOT), "rev-parse", "--short", rev],
                         capture_output=True, text=True).stdout.strip()
    dirty = tree and subprocess.run(["git", "-C", str(ROOT), "diff", "--quiet", "HEAD", "--",
                                     "src"]).returncode != 0
    return sha + ("+changes" if dirty else "")


if __name__ == "__main__":
    main()
