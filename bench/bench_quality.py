"""Offline quality on MovieLens-100K: per-user temporal split (last 20% by time held out),
all ratings as implicit interactions, full ranking over unseen items, @10.

Run: OPENBLAS_NUM_THREADS=1 .venv/bin/python bench/bench_quality.py
"""

from __future__ import annotations

import time

from common import write
from novarank.config import TrainConfig
from novarank.data.loaders import load
from novarank.pipeline import offline

TARGETS = {"recall": 0.135, "ndcg": 0.215}


def main() -> None:
    t = time.perf_counter()
    ds = load("ml-100k")
    res = offline(ds, TrainConfig(), max_eval_users=None)
    assert res.report is not None and res.tuning is not None
    ranker = res.report.get("ranker")
    beats = {b: ranker["recall"] > res.report.get(b)["recall"]
             and ranker["ndcg"] > res.report.get(b)["ndcg"] for b in ("als", "item_item")}
    write("quality", {
        "data": ds.describe(), "split": "per-user temporal, last 20% held out", "k": 10,
        "rows": res.report.rows, "tuning": res.tuning.to_dict(), "targets": TARGETS,
        "pass": {"recall": ranker["recall"] >= TARGETS["recall"],
                 "ndcg": ranker["ndcg"] >= TARGETS["ndcg"], "beats_baselines": beats},
        "seconds": round(time.perf_counter() - t, 1),
    })


if __name__ == "__main__":
    main()
