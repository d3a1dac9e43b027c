"""Blend weights tuned by coordinate ascent on validation NDCG (never on the test split)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

from novarank.config import RankerConfig, Weights
from novarank.evaluation.split import Holdout
from novarank.model import Model
from novarank.ranking.blend import standardize
from novarank.ranking.recommender import Recommender

PARAMS = ("als_mix", "freshness", "trending", "affinity", "quality")
GRID = (0.0, 0.02, 0.05, 0.1, 0.2, 0.35, 0.5, 0.75, 1.0, 1.5, 2.0, 3.0)
HALF_LIVES = (4.0, 8.0, 16.0)  # recency of the history, in interactions


@dataclass
class TuneResult:
    ranker: RankerConfig
    ndcg_before: float
    ndcg_after: float
    users: int
    evaluations: int

    def to_dict(self) -> dict:
        return {"ndcg_before": round(self.ndcg_before, 4), "ndcg_after": round(self.ndcg_after, 4),
                "users": self.users, "evaluations": self.evaluations,
                "als_mix": self.ranker.als_mix,
                "history_half_life": self.ranker.history_half_life,
                "weights": self.ranker.variants["control"].model_dump()}


class _Validation:
    """Standardised components of every sampled user's candidates, padded into one tensor."""

    def __init__(self, model: Model, holdout: Holdout[Any], users: np.ndarray, k: int,
                 ranker: RankerConfig) -> None:
        rec = Recommender(model, ranker)
        rows, masks, truths = [], [], []
        for u in users.tolist():
            p = rec.profile(str(model.user_ids[u]))
            nb = rec.neighbour_scores(p)
            cands = rec.candidates(p, nb)
            comps = rec.components(p, cands, model.as_of, nb)
            z = standardize(comps)
            rows.append(z)
            masks.append(~np.isin(cands, p.seen))
            truths.append(np.isin(cands, holdout.truth[u]))
        m = max(len(r) for r in rows)
        self.z = np.zeros((len(rows), m, 6), np.float32)
        self.valid = np.zeros((len(rows), m), bool)
        self.truth = np.zeros((len(rows), m), bool)
        for i, (r, v, t) in enumerate(zip(rows, masks, truths, strict=True)):
            self.z[i, : len(r)] = r
            self.valid[i, : len(r)] = v
            self.truth[i, : len(r)] = t
        n_truth = np.array([len(holdout.truth[u]) for u in users.tolist()])
        disc = 1.0 / np.log2(np.arange(2, k + 2))
        self.idcg = np.array([disc[: min(n, k)].sum() for n in n_truth])
        self.disc, self.k = disc, k

    def ndcg(self, params: np.ndarray) -> float:
        a, wf, wt, wa, wq = params
        s = (self.z[..., 0] + a * self.z[..., 1]) / (1 + a)
        s = (s + wf * self.z[..., 2] + wt * self.z[..., 3] + wa * self.z[..., 4]
             + wq * self.z[..., 5])
        s = np.where(self.valid, s, -np.inf)
        top = np.argpartition(-s, self.k - 1, axis=1)[:, : self.k]
        order = np.argsort(-np.take_along_axis(s, top, 1), axis=1, kind="stable")
        top = np.take_along_axis(top, order, 1)
        hits = np.take_along_axis(self.truth, top, 1)
        return float(((hits * self.disc).sum(1) / self.idcg).mean())


def tune(model: Model, holdout: Holdout[Any], k: int = 10, max_users: int = 3_000, seed: int = 0,
         rounds: int = 3, progress: Callable[[int], None] | None = None) -> TuneResult:
    """Pick the history half-life, then coordinate ascent over the ALS share and four
    signal weights (relevance fixed at 1 as the scale), all on validation NDCG@k."""
    users = holdout.users
    if len(users) > max_users:
        users = np.sort(np.random.default_rng(seed).choice(users, max_users, replace=False))
    base = model.config.ranker
    w = base.variants.get("control", Weights())
    params = np.array([base.als_mix, w.freshness, w.trending, w.affinity, w.quality])
    before = _Validation(model, holdout, users, k, base).ndcg(params)
    best, val = -1.0, None
    for hl in HALF_LIVES:
        cand = _Validation(model, holdout, users, k,
                           base.model_copy(update={"history_half_life": hl}))
        score = cand.ndcg(params)
        if score > best:
            best, val, base = score, cand, base.model_copy(update={"history_half_life": hl})
    assert val is not None
    evals = 1 + len(HALF_LIVES)
    for _ in range(rounds):
        improved = False
        for i in range(len(PARAMS)):
            for v in sorted(set(GRID) | {params[i] * 0.5, params[i] * 1.5}):
                trial = params.copy()
                trial[i] = v
                score = val.ndcg(trial)
                evals += 1
                if score > best + 1e-6:
                    best, params, improved = score, trial, True
            if progress:
                progress(1)
        if not improved:
            break
    weights = Weights.from_vector([1.0, *params[1:]])
    ranker = base.model_copy(update={"als_mix": round(float(params[0]), 4),
                                     "variants": {**base.variants, "control": weights}})
    return TuneResult(ranker, before, best, len(users), evals)
