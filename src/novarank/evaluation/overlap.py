"""How alike two models' feeds are: the mean Jaccard of each user's top k, by item id."""

from __future__ import annotations

from typing import Any

import numpy as np

from novarank.evaluation.evaluate import rank_functions
from novarank.model import Model
from novarank.ranking.recommender import Recommender


def top_k_jaccard(a: Model, b: Model, k: int = 10, max_users: int | None = None,
                  seed: int = 0) -> dict[str, float | int]:
    """Mean and spread of |A and B| / |A or B| over the users both models know (a seeded
    sample of at most `max_users`), each ranked as served at its own model's clock."""
    users = sorted(set(a.user_ids.tolist()) & set(b.user_ids.tolist()))
    if max_users is not None and len(users) > max_users:
        pick = np.random.default_rng(seed).choice(len(users), max_users, replace=False)
        users = [users[i] for i in sorted(pick)]
    ranks = []
    for model in (a, b):
        rec = Recommender(model)
        fn = rank_functions(rec, k, "control", model.as_of)["ranker"]
        ranks.append((rec, fn, model.item_ids))
    scores = np.empty(len(users))
    for n, user in enumerate(users):
        tops = [set(ids[fn(rec.profile(user))[:k]].tolist()) for rec, fn, ids in ranks]
        union = tops[0] | tops[1]
        scores[n] = len(tops[0] & tops[1]) / len(union) if union else 1.0
    if not len(scores):
        return {"users": 0, "mean": float("nan"), "p10": float("nan"), "identical": 0.0}
    return {"users": len(users), "mean": round(float(scores.mean()), 4),
            "p10": round(float(np.percentile(scores, 10)), 4),
            "identical": round(float((scores == 1.0).mean()), 4)}


def list_agreement(served: list[list[str]], replayed: list[list[str]], k: int
                   ) -> dict[str, float | int]:
    """How far a replay reproduces what was served, page by page: the share of top k
    identical in order, the mean Jaccard, and the mean Kendall tau over the items both hold
    (pages sharing fewer than two count as 0)."""
    from scipy.stats import kendalltau

    if len(served) != len(replayed):
        raise ValueError(f"{len(served)} served pages but {len(replayed)} replayed")
    exact, jaccard, tau = [], [], []
    for a, b in zip(served, replayed, strict=True):
        a, b = a[:k], b[:k]
        exact.append(a == b)
        union = set(a) | set(b)
        jaccard.append(len(set(a) & set(b)) / len(union) if union else 1.0)
        common = [i for i in a if i in set(b)]
        if len(common) < 2:
            tau.append(1.0 if a == b else 0.0)
            continue
        res: Any = kendalltau(range(len(common)), [b.index(i) for i in common])  # no stubs
        tau.append(float(res.statistic) if np.isfinite(res.statistic) else 0.0)
    if not served:
        return {"pages": 0, "exact": float("nan"), "jaccard": float("nan"),
                "kendall_tau": float("nan")}
    return {"pages": len(served), "exact": round(float(np.mean(exact)), 4),
            "jaccard": round(float(np.mean(jaccard)), 4),
            "kendall_tau": round(float(np.mean(tau)), 4)}
