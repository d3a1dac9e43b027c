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
  weighted error on the slots where the candidate and the log agree;
- **PBM**: the position-based model's item-level IPS. Under that model a click on item i
  at position q tells what i would do at any position p, scaled by the examination ratio
  theta_p / theta_q, so a slot counts the logged click of its item wherever the page showed
  it, divided by the chance the page showed it at all. A candidate that reorders the
  logging ranker's top k keeps full weight (the item-position estimators above need an
  explored page to put each item exactly where the candidate does, so their effective size
  collapses); the price is the model's assumption and an examination curve fitted on the
  explored pages, where every position gets items at random: theta_p = 1 / (1 + a p).

The intervals are normal over requests (each request is one independent draw). A slot
where the candidate shows an item the logging window never held has no support: IPS and
SNIPS cannot see it, DR falls back to the click model there, PBM counts it as no click:
the logs cannot vouch for it and a launch gate must not guess it good (the click model's
guess is the logged ranker's CTR at that position, which overstates items the logging
ranker left out of its window: bench_offpolicy's relevance-only reranker). `support` says
how much of the candidate is covered; below full support PBM leans against the candidate
by the clicks its unsupported slots would have had (at most their share of the slots),
and `PreTraffic.min_support` bounds that share.
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


def examination(pages: Sequence[LoggedPage], k: int) -> np.ndarray:
    """theta_p = 1 / (1 + a p), fitted (least squares over a grid of a, the scale in closed
    form) to the CTR by position of the explored pages: their items are a random draw of
    the window at every position, so CTR by position there is examination times a
    constant. Flat (1) when no page was explored."""
    shown, clicks = np.zeros(k), np.zeros(k)
    for pg in pages:
        if pg.shown[:k] == pg.window[:k]:
            continue  # the ranker's own order (or a draw that happened to equal it)
        n = min(k, len(pg.shown))
        shown[:n] += 1
        for p in pg.clicked:
            if p < k:
                clicks[p] += 1
    if not shown.any() or not clicks.any():
        return np.ones(k)
    ctr, q = clicks / np.maximum(shown, 1), np.arange(k)
    best, best_err = 0.0, np.inf
    for a in np.linspace(0.0, 5.0, 501):
        f = 1.0 / (1.0 + a * q)
        scale = float((shown * ctr * f).sum() / max(float((shown * f * f).sum()), 1e-12))
        err = float((shown * (ctr - scale * f) ** 2).sum())
        if err < best_err:
            best, best_err = float(a), err
    return 1.0 / (1.0 + best * q)


def shown_chance(window: Sequence[str], epsilon: float, item: str, k: int) -> float:
    """P(item shown anywhere on a k-item page) under the exploration that logged `window`:
    in the ranker's top k, or one of the k drawn from the window when explored."""
    if item not in window:
        return 0.0
    top = item in window[:k]
    return (1.0 - epsilon) * top + epsilon * min(k, len(window)) / len(window)


@dataclass(frozen=True)
class _PerRequest:
    ips: np.ndarray  # weighted clicks per request
    weight: np.ndarray  # sum of slot weights per request (k on average under full support)
    dr: np.ndarray
    pbm: np.ndarray  # position-corrected clicks of the candidate's items, per request
    pbm_weight: np.ndarray
    support: float


def _per_request(pages: Sequence[LoggedPage], targets: Sequence[Sequence[str]], k: int,
                 cm: ClickModel, theta: np.ndarray) -> _PerRequest:
    if len(pages) != len(targets):
        raise ValueError(f"{len(pages)} logged pages but {len(targets)} candidate pages")
    if not pages:
        raise ValueError("no logged pages to estimate from")
    if k > depth(pages):
        raise ValueError(f"k={k} reaches past the logged pages' depth of {depth(pages)}: "
                         "positions never shown or never explored weigh nothing")
    n = len(pages)
    ips, weight, dr = np.zeros(n), np.zeros(n), np.zeros(n)
    pbm, pbm_weight = np.zeros(n), np.zeros(n)
    supported = slots = 0
    for j, (pg, tgt) in enumerate(zip(pages, targets, strict=True)):
        w = _slot_weights(pg, tgt, k)
        r = np.array([float(p in pg.clicked) for p in range(k)])
        ips[j] = float((w * r).sum())
        weight[j] = float(w.sum())
        where = {item: q for q, item in enumerate(pg.shown[:k])}
        for p, item in enumerate(tgt[:k]):
            slots += 1
            supported += propensity(pg.window, pg.epsilon, item, p) > 0
            q = cm.predict(item, p)
            dr[j] += q + (w[p] * (r[p] - q) if w[p] else 0.0)
            at = where.get(item)
            if at is not None:
                wp = float(theta[p] / theta[at]) / shown_chance(pg.window, pg.epsilon, item, k)
                pbm[j] += wp * r[at]
                pbm_weight[j] += wp
    return _PerRequest(ips, weight, dr, pbm, pbm_weight, supported / max(slots, 1))


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
    w = v.pbm_weight if name == "pbm" else v.weight
    ess = float(w.sum() ** 2 / max(float((w ** 2).sum()), 1e-12))
    return Estimate(name, centre, (centre - Z95 * se, centre + Z95 * se), n, ess, v.support)


def estimate(pages: Sequence[LoggedPage], targets: Sequence[Sequence[str]], k: int,
             click_model: ClickModel | None = None, theta: np.ndarray | None = None
             ) -> dict[str, Estimate]:
    """IPS, SNIPS, DR and PBM estimates of the CTR the candidate (one target page per logged
    page) would have had on the logged requests."""
    theta = examination(pages, k) if theta is None else theta
    v = _per_request(pages, targets, k, click_model or ClickModel.fit(pages, k), theta)
    ratio, infl = _snips_influence(v)
    return {"ips": _normal("ips", float(v.ips.mean()) / k, v.ips / k, v),
            "snips": _normal("snips", ratio, infl, v),
            "dr": _normal("dr", float(v.dr.mean()) / k, v.dr / k, v),
            "pbm": _normal("pbm", float(v.pbm.mean()) / k, v.pbm / k, v)}


def compare(pages: Sequence[LoggedPage], candidate: Sequence[Sequence[str]],
            current: Sequence[Sequence[str]], k: int, click_model: ClickModel | None = None,
            theta: np.ndarray | None = None) -> dict[str, Estimate]:
    """The candidate's CTR minus the current ranker's, paired request by request on the
    same logs (so the interval is that of the difference, much narrower than two apart).
    Effective size and support are the candidate's."""
    cm = click_model or ClickModel.fit(pages, k)
    theta = examination(pages, k) if theta is None else theta
    a, b = _per_request(pages, candidate, k, cm, theta), _per_request(pages, current, k, cm,
                                                                      theta)
    ra, ia = _snips_influence(a)
    rb, ib = _snips_influence(b)
    return {"ips": _normal("ips", float((a.ips - b.ips).mean()) / k, (a.ips - b.ips) / k, a),
            "snips": _normal("snips", ra - rb, ia - ib, a),
            "dr": _normal("dr", float((a.dr - b.dr).mean()) / k, (a.dr - b.dr) / k, a),
            "pbm": _normal("pbm", float((a.pbm - b.pbm).mean()) / k, (a.pbm - b.pbm) / k, a)}
