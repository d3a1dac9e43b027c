"""Offline evaluation of the full ranker against single-source baselines, by cohort."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from novarank.evaluation.metrics import COHORTS, METRICS, cohort_of, ranking_metrics
from novarank.evaluation.split import Holdout
from novarank.model import Model
from novarank.ranking.recommender import Recommender, UserProfile

METHODS = ("ranker", "item_item", "als", "popularity")
RankFn = Callable[[UserProfile], np.ndarray]


@dataclass
class EvalReport:
    k: int
    users: int
    rows: list[dict] = field(default_factory=list)  # one per (method, cohort)
    # the ranker's per-user Recall@k minus popularity's on the same users: mean and 95% CI
    lift: dict | None = None

    def get(self, method: str, cohort: str = "all") -> dict:
        for r in self.rows:
            if r["method"] == method and r["cohort"] == cohort:
                return r
        raise KeyError(f"no row for method={method} cohort={cohort}")

    def to_dict(self) -> dict:
        return {"k": self.k, "users": self.users, "rows": self.rows, "lift": self.lift}


def _top_excluding(cands: np.ndarray, scores: np.ndarray, seen: np.ndarray, k: int
                   ) -> np.ndarray:
    keep = ~np.isin(cands, seen)
    c, s = cands[keep], scores[keep]
    if len(c) > k:
        part = np.argpartition(-s, k - 1)[:k]
        return c[part[np.argsort(-s[part], kind="stable")]]
    return c[np.argsort(-s, kind="stable")]


def rank_functions(rec: Recommender, k: int, variant: str, now: int) -> dict[str, RankFn]:
    """The ranker as served, and each baseline scored over the same candidates."""
    weights = rec.weights(variant)
    model = rec.model

    def ranker(p: UserProfile) -> np.ndarray:
        r = rec.rank(p, k, weights, now)
        return np.concatenate([r.items, r.backfill])

    def baseline(column: int | None) -> RankFn:
        def fn(p: UserProfile) -> np.ndarray:
            nb = rec.neighbour_scores(p)
            cands = rec.candidates(p, nb)
            if column is None:
                return _top_excluding(cands, model.popularity[cands], p.seen, k)
            comps = rec.components(p, cands, now, nb)
            return _top_excluding(cands, comps[:, column], p.seen, k)
        return fn

    return {"ranker": ranker, "item_item": baseline(0), "als": baseline(1),
            "popularity": baseline(None)}


def paired_lift(diffs: list[float], metric: str, baseline: str) -> dict | None:
    """Mean of per-user differences with a normal 95% interval: the same users ranked by
    both, so the interval is that of the lift itself, not of two separate means."""
    if len(diffs) < 2:
        return None
    d = np.asarray(diffs, dtype=np.float64)
    mean, se = float(d.mean()), float(d.std(ddof=1) / np.sqrt(len(d)))
    return {"metric": metric, "method": "ranker", "baseline": baseline, "users": len(d),
            "mean": round(mean, 5), "ci95": [round(mean - 1.96 * se, 5),
                                             round(mean + 1.96 * se, 5)]}


def evaluate(model: Model, holdout: Holdout[Any], k: int = 10, variant: str = "control",
             methods: Iterable[str] = METHODS, max_users: int | None = None, seed: int = 0,
             recommender: Recommender | None = None,
             progress: Callable[[int], None] | None = None) -> EvalReport:
    """Metrics at k over held-out users (a seeded sample when max_users is set)."""
    rec = recommender or Recommender(model)
    users = holdout.users
    if max_users is not None and len(users) > max_users:
        users = np.sort(np.random.default_rng(seed).choice(users, max_users, replace=False))
    sizes = np.diff(model.hist_indptr)
    fns = rank_functions(rec, k, variant, model.as_of)
    methods = list(methods)
    sums: dict[tuple[str, str], dict[str, float]] = defaultdict(lambda: defaultdict(float))
    counts: dict[tuple[str, str], int] = defaultdict(int)
    shown: dict[tuple[str, str], set[int]] = defaultdict(set)
    diffs: list[float] = []  # paired: ranker - popularity, per user
    for n, u in enumerate(users.tolist()):
        p = rec.profile(str(model.user_ids[u]))
        truth = holdout.truth[u]
        cohort = cohort_of(int(sizes[u]))
        recalls = {}
        for method in methods:
            ranked = fns[method](p)
            scores = ranking_metrics(ranked, truth, k)
            recalls[method] = scores["recall"]
            for key in ((method, "all"), (method, cohort)):
                counts[key] += 1
                shown[key].update(ranked[:k].tolist())
                for name, v in scores.items():
                    sums[key][name] += v
        if "ranker" in recalls and "popularity" in recalls:
            diffs.append(recalls["ranker"] - recalls["popularity"])
        if progress and ((n + 1) % 50 == 0 or n + 1 == len(users)):
            progress((n + 1) - 50 * (n // 50))
    report = EvalReport(k=k, users=len(users), lift=paired_lift(diffs, "recall", "popularity"))
    for method in methods:
        for cohort in ("all", *(c for c, _, _ in COHORTS)):
            key = (method, cohort)
            if not counts[key]:
                continue
            row = {"method": method, "cohort": cohort, "users": counts[key]}
            row.update({m: round(sums[key][m] / counts[key], 4) for m in METRICS})
            row["coverage"] = round(len(shown[key]) / model.n_items, 4)
            report.rows.append(row)
    return report
