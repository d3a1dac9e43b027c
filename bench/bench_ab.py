"""The cached feed (or the miss path) of two or more git revisions, paired in one run.

This machine's speed drifts by 2x within minutes (a shared host), so capacities measured
minutes apart compare the host, not the code. Here every revision's server is up at once,
each from a worktree of that revision on the same virtualenv, all pinned to core 1, and
wrk (core 0) alternates short runs between them and the bare ASGI app of bench_floor.py,
round after round: a round's ratio compares runs seconds apart, and the median over the
rounds is the answer. Same release, same users in turn, same body size.

Run: OPENBLAS_NUM_THREADS=1 .venv/bin/python bench/bench_ab.py 4619b9e HEAD [--miss]
(the revisions must load the release this one writes; needs `wrk`)
"""

from __future__ import annotations

import argparse
import shutil
import subprocess
import tempfile
from pathlib import Path

import httpx

from bench_floor import bare, wrk
from bench_serving import ADMIN, build_release, pin_self, serve, spread, stop
from common import rotation, write

ROOT = Path(__file__).resolve().parent.parent


def worktree(rev: str, into: Path) -> Path:
    """A checkout of `rev` (its commit id named), for PYTHONPATH=<it>/src."""
    commit = subprocess.run(["git", "rev-parse", "--short", rev], cwd=ROOT, check=True,
                            capture_output=True, text=True).stdout.strip()
    path = into / commit
    if not path.exists():
        subprocess.run(["git", "worktree", "add", "--detach", "-q", str(path), commit],
                       cwd=ROOT, check=True)
    return path


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("revs", nargs="+", help="git revisions; the first is the baseline")
    ap.add_argument("--rounds", type=int, default=8)
    ap.add_argument("--secs", type=float, default=3.0)
    ap.add_argument("--miss", action="store_true", help="every request a miss (L1 TTL 1 ms)")
    args = ap.parse_args()
    if shutil.which("wrk") is None:
        raise SystemExit("wrk is not installed (apt-get install wrk)")
    pin_self()
    work = Path(tempfile.mkdtemp(prefix="nr-bench-ab-"))
    trees = {rev: worktree(rev, work / "trees") for rev in args.revs}
    procs: dict[str, subprocess.Popen] = {}
    try:
        users = build_release(work / "release", 20_000, 5_000, 1_500_000)
        urls = {}
        for rev, tree in trees.items():
            env = {"PYTHONPATH": str(tree / "src"),
                   **({"NOVARANK_FEED_TTL_S": "0.001"} if args.miss else {})}
            procs[rev], urls[rev] = serve(work / "release", work, env=env)
            if not args.miss:
                httpx.post(urls[rev] + "/v1/admin/cache/warm", headers=ADMIN,
                           timeout=600).raise_for_status()
        hot = users[:5_000]
        every = rotation(work, "feed", "/v1/users/{u}/feed?k=10", hot, ADMIN)
        size = len(httpx.get(f"{urls[args.revs[0]]}/v1/users/{hot[0]}/feed?k=10",
                             headers=ADMIN).content)
        procs["bare"], bare_url = bare(size)
        for url in urls.values():
            wrk(url, 2, {}, every)  # warm-up
        runs: dict[str, list[float]] = {"bare": [], **{rev: [] for rev in args.revs}}
        for _ in range(args.rounds):
            runs["bare"].append(wrk(bare_url + "/", args.secs, {}))
            for rev, url in urls.items():
                runs[rev].append(wrk(url, args.secs, {}, every))
    finally:
        for proc in procs.values():
            stop(proc)
        for tree in trees.values():
            subprocess.run(["git", "worktree", "remove", "--force", str(tree)], cwd=ROOT,
                           check=False, capture_output=True)
        shutil.rmtree(work, ignore_errors=True)
    first = args.revs[0]
    commits = {rev: tree.name for rev, tree in trees.items()}
    write("ab-miss" if args.miss else "ab", {
        "path": "miss (L1 TTL 1 ms)" if args.miss else "cached feed (L1 hits)",
        "rounds": args.rounds, "seconds": args.secs, "body_bytes": size, "revs": commits,
        "capacity_rps": {commits.get(k, k): spread(v) for k, v in runs.items()},
        "vs_first": {commits[rev]: spread([a / b for a, b in zip(runs[rev], runs[first],
                                                                 strict=True)])
                     for rev in args.revs},
        "vs_bare": {commits[rev]: spread([a / b for a, b in zip(runs[rev], runs["bare"],
                                                                strict=True)])
                    for rev in args.revs}})


if __name__ == "__main__":
    main()
