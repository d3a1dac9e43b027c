"""Counterfactual CTR of a candidate ranking from logs with known propensities.

Each logged page carries the window and epsilon it was drawn with (`ranking/explore.py`),
so the chance of every (item, position) is known exactly. Clicks are assumed to depend on
the item and its position only (the position-based model the simulator also follows), so
each slot is weighed on its own — the "independent" item-position IPS of Li et al.
("Offline Evaluation of Ranking Policies with Click Models", KDD 2018):

- **IPS**: a slot where the candidate would show the logged item counts its click divided
  by that item's chance of being there;
- **SNIPS**: the same, divided by the mean weight (lower variance, slightly biased);
- **DR**: a click model's prediction for what the candidate shows, corrected by the
  weighted error on the slots where the candidate and the log agree.

The intervals are normal over requests (each request is one independent draw). A slot
where the candidate shows an item the logging window never held has no support: IPS and
SNIPS cannot see it, DR falls back to the click model there; `support` says how much of
the candidate is covered, and below full support no estimate should be trusted.
Open Bandit Pipeline's slate estimators were the library choice; `obp` imports torch at
its top level, which would put a multi-gigabyte dependency in the serving image.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np

from novarank.ranking.explore import propensity

Z95 = 1.959964


@dataclass(frozen=True)
class LoggedPage:
    """One served page: what the logging ranker's window was, what was shown, the clicks."""

    window: tuple[str, ...]
    epsilon: float
    shown: tuple[str, ...]
    clicked: frozenset[int]  # positions clicked


@dataclass(frozen=True)
class Estimate:
    estimator: str
    ctr: float  # clicks per shown slot
    ci95: tuple[float, float]
    requests: int
    effective_requests: float  # (sum of weights)^2 / sum of squared weights, per request
    support: float  # share of the candidate's slots the logging window could have shown

    def to_dict(self) -> dict:
        return {"estimator": self.estimator, "ctr": round(self.ctr, 5),
                "ci95": [round(self.ci95[0], 5), round(self.ci95[1], 5)],
                "requests": self.requests,
                "effective_requests": round(self.effective_requests, 1),
                "support": round(self.support, 4)}


@dataclass
class ClickModel:
    """Position CTR times a shrunk per-item multiplier, fitted on the logs (for DR)."""

    by_position: np.ndarray
    item_lift: dict[str, float] = field(default_factory=dict)

    @classmethod
    def fit(cls, pages: Sequence[LoggedPage], k: int, prior: float = 20.0) -> ClickModel:
        shown = np.zeros(k)
        clicks = np.zeros(k)
        for pg in pages:
            n = min(k, len(pg.shown))
            shown[:n] += 1
            for p in pg.clicked:
                if p < k:
                    clicks[p] += 1
        pos = clicks / np.maximum(shown, 1)
        seen: dict[str, list[float]] = {}
        for pg in pages:
            for p, item in enumerate(pg.shown[:k]):
                acc = seen.setdefault(item, [0.0, 0.0])
                acc[0] += p in pg.clicked
                acc[1] += pos[p]
        expected_prior = prior * max(float(pos.mean()), 1e-6)
        lift = {i: (c + expected_prior) / (e + expected_prior) for i, (c, e) in seen.items()}
        return cls(pos, lift)

    def predict(self, item: str, position: int) -> float:
        return min(1.0, float(self.by_position[position]) * self.item_lift.get(item, 1.0))


def depth(pages: Sequence[LoggedPage]) -> int:
    """The deepest page size the logs can weigh: every page showed that many items, drawn
    from a window at least that deep."""
    return min(min(len(pg.shown), len(pg.window)) for pg in pages)


def _slot_weights(page: LoggedPage, target: Sequence[str], k: int) -> np.ndarray:
    """Per position: 1/P(shown item there) where the candidate would show that same item."""
    w = np.zeros(k)
    for p in range(min(k, len(page.shown), len(target))):
        if target[p] == page.shown[p]:
            w[p] = 1.0 / propensity(page.window, page.epsilon, target[p], p)
    return w


@dataclass(frozen=True)
class _PerRequest:
    ips: np.ndarray  # weighted clicks per request
    weight: np.ndarray  # sum of slot weights per request (k on average under full support)
    dr: np.ndarray
    support: float


def _per_request(pages: Sequence[LoggedPage], targets: Sequence[Sequence[str]], k: int,
                 cm: ClickModel) -> _PerRequest:
    if len(pages) != len(targets):
        raise ValueError(f"{len(pages)} logged pages but {len(targets)} candidate pages")
    if not pages:
        raise ValueError("no logged pages to estimate from")
    if k > depth(pages):
        raise ValueError(f"k={k} reaches past the logged pages' depth of {depth(pages)}: "
                         "positions never shown or never explored weigh nothing")
    n = len(pages)
    ips, weight, dr = np.zeros(n), np.zeros(n), np.zeros(n)
    supported = slots = 0
    for j, (pg, tgt) in enumerate(zip(pages, targets, strict=True)):
        w = _slot_weights(pg, tgt, k)
        r = np.array([float(p in pg.clicked) for p in range(k)])
        ips[j] = float((w * r).sum())
        weight[j] = float(w.sum())
        for p, item in enumerate(tgt[:k]):
            slots += 1
            supported += propensity(pg.window, pg.epsilon, item, p) > 0
            q = cm.predict(item, p)
            dr[j] += q + (w[p] * (r[p] - q) if w[p] else 0.0)
    return _PerRequest(ips, weight, dr, supported / max(slots, 1))


def _snips_influence(v: _PerRequest) -> tuple[float, np.ndarray]:
    """The ratio (CTR per slot) and each request's influence on it (delta method)."""
    total = float(v.weight.sum())
    if total <= 0:
        return float("nan"), np.full(len(v.ips), np.nan)
    ratio = float(v.ips.sum() / total)
    return ratio, (v.ips - ratio * v.weight) / float(v.weight.mean())


def _normal(name: str, centre: float, influence: np.ndarray, v: _PerRequest) -> Estimate:
    n = len(influence)
    se = float(influence.std(ddof=1) / np.sqrt(n)) if n > 1 else float("inf")
    ess = float(v.weight.sum() ** 2 / max(float((v.weight ** 2).sum()), 1e-12))
    return Estimate(name, centre, (centre - Z95 * se, centre + Z95 * se), n, ess, v.support)


def estimate(pages: Sequence[LoggedPage], targets: Sequence[Sequence[str]], k: int,
             click_model: ClickModel | None = None) -> dict[str, Estimate]:
    """IPS, SNIPS and DR estimates of the CTR the candidate (one target page per logged page)
    would have had on the logged requests."""
    v = _per_request(pages, targets, k, click_model or ClickModel.fit(pages, k))
    ratio, infl = _snips_influence(v)
    return {"ips": _normal("ips", float(v.ips.mean()) / k, v.ips / k, v),
            "snips": _normal("snips", ratio, infl, v),
            "dr": _normal("dr", float(v.dr.mean()) / k, v.dr / k, v)}


def compare(pages: Sequence[LoggedPage], candidate: Sequence[Sequence[str]],
            current: Sequence[Sequence[str]], k: int, click_model: ClickModel | None = None
            ) -> dict[str, Estimate]:
    """The candidate's CTR minus the current ranker's, paired request by request on the
    same logs (so the interval is that of the difference, much narrower than two apart).
    Effective size and support are the candidate's."""
    cm = click_model or ClickModel.fit(pages, k)
    a, b = _per_request(pages, candidate, k, cm), _per_request(pages, current, k, cm)
    ra, ia = _snips_influence(a)
    rb, ib = _snips_influence(b)
    return {"ips": _normal("ips", float((a.ips - b.ips).mean()) / k, (a.ips - b.ips) / k, a),
            "snips": _normal("snips", ra - rb, ia - ib, a),
            "dr": _normal("dr", float((a.dr - b.dr).mean()) / k, (a.dr - b.dr) / k, a)}
