"""Ranking metrics at k for one user, and the history-size cohorts they are grouped by."""

from __future__ import annotations

import numpy as np

# (name, min history, max history) inclusive
COHORTS = (("cold", 0, 4), ("light", 5, 20), ("medium", 21, 100), ("heavy", 101, 1 << 62))
METRICS = ("recall", "ndcg", "hit_rate", "mrr")

_DISCOUNT = 1.0 / np.log2(np.arange(2, 2 + 1000))


def cohort_of(history_size: int) -> str:
    for name, lo, hi in COHORTS:
        if lo <= history_size <= hi:
            return name
    raise ValueError(f"history size {history_size} is negative")


def ranking_metrics(ranked: np.ndarray, truth: np.ndarray, k: int) -> dict[str, float]:
    """Recall, NDCG, HitRate and MRR at k for one user. `truth` must be non-empty."""
    if len(truth) == 0:
        raise ValueError("truth is empty: users without held-out items are not evaluated")
    top = np.asarray(ranked)[:k]
    hits = np.isin(top, truth)
    n_hits = int(hits.sum())
    dcg = float(_DISCOUNT[: len(top)][hits].sum())
    idcg = float(_DISCOUNT[: min(len(truth), k)].sum())
    first = int(np.argmax(hits)) if n_hits else -1
    return {
        "recall": n_hits / len(truth),
        "ndcg": dcg / idcg,
        "hit_rate": float(n_hits > 0),
        "mrr": 1.0 / (first + 1) if n_hits else 0.0,
    }
