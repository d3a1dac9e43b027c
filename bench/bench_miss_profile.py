"""Where a feed miss spends its time, stage by stage, on the MovieLens-100K release.

In process, one core: the release bench_peer.py serves (the temporal train split), a
service as `novarank serve` builds it (L1 only, SQLite state, the file lake), and every
request a re-rank (`refresh`: no cache read, the window and page cached as on a miss).
First the misses are timed bare; then the same misses run under cProfile, and each stage
is its functions' share of the profiled total, scaled to the bare time (cProfile
inflates small calls, so shares are indicative, not exact).

Run: OPENBLAS_NUM_THREADS=1 .venv/bin/python bench/bench_miss_profile.py [--misses 2000]
"""

from __future__ import annotations

import argparse
import cProfile
import pstats
import shutil
import statistics
import tempfile
import time
from pathlib import Path

from bench_peer import split_train
from bench_serving import TOKEN, pin_self
from common import write
from novarank.config import ServiceSettings
from novarank.online.service import RankingService

# stage -> the functions (module path suffix, name) whose cumulative time it is; a stage
# given as (whole, part) is the whole's time less the part's
STAGES: dict[str, list[tuple[str, str]]] = {
    "history read + profile": [("online/audience.py", "profile")],
    "item-item neighbour scores": [("ranking/recommender.py", "neighbour_scores")],
    "candidates": [("ranking/recommender.py", "candidates")],
    "five signals: raw inputs": [("ranking/recommender.py", "components")],
    "standardise + blend": [("ranking/recommender.py", "signals"),
                            ("ranking/blend.py", "blend")],
    "select: filters, creator cap, backfill": [("ranking/select.py", "select_top_k")],
    "snapshot encoding + cache writes": [("online/feeds.py", "_keep")],
    "page render": [("online/window.py", "of")],
    "metrics + request/ranking events": [("online/requests.py", "observe"),
                                         ("online/requests.py", "emit")],
}
WINDOW = (("online/window.py", "rank_window"), ("ranking/recommender.py", "rank"))
TOTAL = ("online/feeds.py", "feed")


def cumulative(stats: pstats.Stats, where: tuple[str, str]) -> float:
    """Seconds spent in (and under) the function, over every call."""
    found = [v[3] for (path, _, name), v in stats.stats.items()  # type: ignore[attr-defined]
             if path.endswith(where[0]) and name == where[1]]
    if not found:
        raise RuntimeError(f"{where[1]} in {where[0]} never ran: the stage map is stale")
    return sum(found)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--misses", type=int, default=2000)
    n = ap.parse_args().misses
    pin_self()
    work = Path(tempfile.mkdtemp(prefix="nr-bench-miss-"))
    try:
        release, users = split_train(work)
        service = RankingService(ServiceSettings(
            release=release, state_url=f"sqlite:///{work}/s.db",
            events_url=f"file://{work}/lake", admin_token=TOKEN))
        feeds = service.feeds
        try:
            for u in users[:200]:
                feeds.feed(u, 10, refresh=True)
            bare = []
            for _ in range(3):
                t0 = time.perf_counter()
                for i in range(n):
                    feeds.feed(users[i % len(users)], 10, refresh=True)
                bare.append((time.perf_counter() - t0) / n * 1e6)
            profile = cProfile.Profile()
            profile.enable()
            for i in range(n):
                feeds.feed(users[i % len(users)], 10, refresh=True)
            profile.disable()
        finally:
            service.close()
    finally:
        shutil.rmtree(work, ignore_errors=True)
    stats = pstats.Stats(profile)
    total = cumulative(stats, TOTAL)
    us = statistics.median(bare)
    shares = {name: sum(cumulative(stats, f) for f in funcs) / total
              for name, funcs in STAGES.items()}
    shares["window assembly (200 items)"] = (cumulative(stats, WINDOW[0])
                                             - cumulative(stats, WINDOW[1])) / total
    shares["the rest (routing, variant, key, exclusions, the feed path itself)"] = 1.0 - sum(
        shares.values())
    write("miss_profile", {
        "release": "ml-100k temporal train split", "misses": n,
        "us_per_miss": {"median": round(us, 1), "runs": [round(x, 1) for x in bare]},
        "stages": {k: {"share": round(v, 3), "us": round(v * us, 1)}
                   for k, v in shares.items()}})


if __name__ == "__main__":
    main()
