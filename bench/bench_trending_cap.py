"""What the bound on live trending buys and costs, measured with it and without it.

Buys: the single-share takeover replayed (one `share` of an obscure item on a release
trained 60 days ago, tuned weights: trending as heavy as freshness): how many of 20 users
get it as their top item, and its largest trending contribution. Costs: Recall@10 and the
lift over popularity of a tuned offline evaluation (the same as `novarank evaluate`).
"Without" sets TRENDING_Z_CAP to infinity, drops the deviation floor (TRENDING_MIN_SD) and
lets every event count in full.

Run: OPENBLAS_NUM_THREADS=1 .venv/bin/python bench/bench_trending_cap.py [--quick]
"""

from __future__ import annotations

import argparse
import tempfile
import time
from dataclasses import replace
from pathlib import Path

import numpy as np
from fastapi.testclient import TestClient

from common import write
from novarank.api import create_app
from novarank.config import ServiceSettings, TrainConfig, Weights
from novarank.data.loaders import load
from novarank.data.synthetic import SyntheticConfig, generate
from novarank.online import influence
from novarank.pipeline import offline
from novarank.ranking import recommender
from novarank.release import save_release
from novarank.training import fit_model


def bounded(on: bool) -> None:
    recommender.TRENDING_Z_CAP = 3.0 if on else float("inf")
    recommender._MIN_SD = _MIN_SD if on else np.zeros_like(_MIN_SD)
    influence.InfluenceCap.admit = _ADMIT if on else (lambda self, u, i, w, now: w)


_ADMIT = influence.InfluenceCap.admit
_MIN_SD = recommender._MIN_SD


def takeover(work: Path) -> dict:
    d = generate(SyntheticConfig(users=400, items=300, creators=40, events=30_000, seed=11))
    model = fit_model(d.dataset, TrainConfig(als_iterations=5, als_factors=16, neighbours=50,
                                             tune=False))
    tuned = Weights(relevance=1.0, freshness=4.5, trending=4.5, affinity=1.5, quality=0.005)
    config = model.config.model_copy(update={"ranker": model.config.ranker.model_copy(
        update={"variants": {"control": tuned}})})
    release = work / "old"
    save_release(replace(model, as_of=int(time.time()) - 60 * 86400, config=config), release)
    s = ServiceSettings(release=release, state_url=f"sqlite:///{work}/s.db",
                        events_url="null://", admin_token="t", trending_refresh_s=0.1,
                        auth="off",  # an in-process app without keys: this measures ranking
                        refresh_s=0.05, rate_limits={"events": 0, "miss": 0})
    users = [str(u) for u in d.dataset.user_ids[50:70]]
    headers = {"Authorization": "Bearer t", "Cache-Control": "no-cache"}
    with TestClient(create_app(s)) as c:
        target = c.get("/v1/trending?k=200").json()["items"][-1]["item_id"]
        c.post("/v1/events", json=[{"type": "share", "user_id": "attacker",
                                    "item_id": target}])
        time.sleep(1.0)  # ten trending refreshes
        feeds = [c.get(f"/v1/users/{u}/feed?k=10", headers=headers).json() for u in users]
    return {"users": len(users),
            "top_item_for_users": sum(f["items"][0]["item_id"] == target for f in feeds),
            "max_trending_contribution": max(it["reasons"]["trending"] for f in feeds
                                             for it in f["items"])}


def quality(data: str) -> dict:
    res = offline(load(data), TrainConfig(), do_tune=True, max_eval_users=3000,
                  step=lambda *a, **k: None)
    rows = {r["method"]: r for r in res.metrics()["evaluation"]["rows"]
            if r["cohort"] == "all"}
    lift = res.metrics()["evaluation"]["lift"]
    return {"recall_ranker": rows["ranker"]["recall"],
            "recall_popularity": rows["popularity"]["recall"],
            "lift_mean": lift["mean"], "lift_ci95": lift["ci95"]}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--quick", action="store_true")
    q = ap.parse_args().quick
    sets = ["ml-100k"] if q else ["ml-100k", "synthetic:users=4000,items=1500,events=250000"]
    out: dict = {"takeover": {}, "quality": {s: {} for s in sets}}
    for on in (False, True):
        label = "bounded" if on else "unbounded"
        bounded(on)
        with tempfile.TemporaryDirectory() as tmp:
            out["takeover"][label] = takeover(Path(tmp))
        for data in sets:
            out["quality"][data][label] = quality(data)
    bounded(True)
    t = out["takeover"]
    out["pass"] = {"takeover_bounded": t["bounded"]["top_item_for_users"]
                   <= t["bounded"]["users"] // 4,
                   "lift_stays_positive": all(v["bounded"]["lift_ci95"][0] > 0
                                              for v in out["quality"].values())}
    write("trending_cap" if not q else "trending_cap-quick", out)


if __name__ == "__main__":
    main()
