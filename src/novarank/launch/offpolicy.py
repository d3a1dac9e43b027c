"""Off-policy estimates checked against the simulator's truth.

A logging ranker serves simulated users with exploration on; each candidate ranker's CTR
is then estimated from those logs alone and compared with its true CTR: the expected
clicks per slot had it served the very same requests, from the simulator's click model.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np

from novarank.evaluation.counterfactual import Estimate, LoggedPage, estimate
from novarank.launch.gates import Verdict
from novarank.launch.simulator import Simulator, SimUser
from novarank.ranking.explore import Exploration
from novarank.ranking.recommender import Recommender

Ranker = Callable[[SimUser, int], list[str]]  # (user, n) -> item ids, best first


@dataclass(frozen=True)
class Trial:
    candidate: str
    truth: float  # true CTR per slot on the logged requests
    estimates: dict[str, Estimate]

    def covered(self, estimator: str) -> bool:
        lo, hi = self.estimates[estimator].ci95
        return lo <= self.truth <= hi


def ranker_of(rec: Recommender, weights: np.ndarray) -> Ranker:
    """A release's ranking for simulated users (their release history), cached per user:
    every design compares rankers on the same users again and again."""
    cache: dict[tuple[str, int], list[str]] = {}

    def rank(user: SimUser, n: int) -> list[str]:
        if (user.user_id, n) not in cache:
            r = rec.rank(rec.profile(user.user_id), n, weights, rec.model.as_of)
            cache[user.user_id, n] = [str(rec.model.item_ids[i])
                                      for i in np.concatenate([r.items, r.backfill])[:n]]
        return cache[user.user_id, n]
    return rank


def log_pages(sim: Simulator, logging: Ranker, exploration: Exploration, requests: int,
              k: int, seed: int) -> tuple[list[SimUser], list[LoggedPage], float]:
    """`requests` explored pages served by `logging`, with clicks drawn from the truth; and
    the CTR those logs actually had."""
    rng = np.random.default_rng(seed)
    users, pages = [], []
    clicks = slots = 0
    for _ in range(requests):
        user = sim.pick_user()
        window = logging(user, max(k, exploration.window))
        shown, _ = exploration.serve(window, k, rng)
        clicked = frozenset(sim.clicks(user, shown, rng))
        users.append(user)
        pages.append(LoggedPage(tuple(window[: exploration.window]), exploration.epsilon,
                                tuple(shown), clicked))
        clicks += len(clicked)
        slots += len(shown)
    return users, pages, clicks / max(slots, 1)


def trial(sim: Simulator, users: list[SimUser], pages: list[LoggedPage],
          candidates: Mapping[str, Ranker], k: int) -> list[Trial]:
    """Each candidate's estimates from the logs beside its true CTR on the same requests."""
    out = []
    for name, rank in candidates.items():
        targets = [rank(u, k) for u in users]
        truth = sum(float(sim.seen_probs(u, t[:k]).sum())
                    for u, t in zip(users, targets, strict=True))
        out.append(Trial(name, truth / (k * len(users)), estimate(pages, targets, k)))
    return out


def reordered(sim: Simulator, logging: Ranker, window: int, how: str) -> Ranker:
    """A candidate that reorders the logging ranker's window (full support, so the estimate
    has no excuse): 'truth' puts the truly best first (better than any real ranker with that
    window), 'tail' shows the window's last items (worse)."""
    if how not in ("truth", "tail"):
        raise ValueError(f"unknown reordering {how!r}")

    def rank(user: SimUser, n: int) -> list[str]:
        items = logging(user, window)[:window]
        if how == "tail":
            return items[::-1][:n]
        best = np.argsort(-sim.click_probs(user, items), kind="stable")
        return [items[int(j)] for j in best[:n]]
    return rank


def coverage(trials: list[Trial]) -> dict[str, float]:
    """Per estimator: the share of trials whose 95% interval held the true CTR."""
    names = sorted({e for t in trials for e in t.estimates})
    return {e: sum(t.covered(e) for t in trials) / max(len(trials), 1) for e in names}


# ---- from the lake: the pre-traffic estimate of a candidate release ------------------------

@dataclass(frozen=True)
class Judgement:
    verdict: Verdict  # GREEN, RED or INCONCLUSIVE
    reason: str


@dataclass(frozen=True)
class PreTraffic:
    """What the logs say a candidate would do against the release that logged them."""

    margin: float = 0.05  # relative CTR loss the candidate may cost at most
    min_effective: float = 300.0  # effective requests below which nothing is concluded
    min_support: float = 0.95  # share of the candidate's slots the logs could have shown
    estimator: str = "pbm"  # reordering the top k keeps its effective size (see counterfactual)

    def judge(self, current: Estimate, difference: Estimate) -> Judgement:
        lo, hi = difference.ci95
        floor = -self.margin * current.ctr
        change = f"CTR change {difference.ctr:+.4f} ({lo:+.4f}, {hi:+.4f})"
        bar = f"-{self.margin:.0%} of {current.ctr:.4f}"
        if difference.support < self.min_support:
            return Judgement(Verdict.INCONCLUSIVE,
                             f"support {difference.support:.2f} < {self.min_support}: the "
                             "candidate shows items exploration never reached")
        if difference.effective_requests < self.min_effective:
            return Judgement(Verdict.INCONCLUSIVE,
                             f"{difference.effective_requests:.0f} effective requests < "
                             f"{self.min_effective:.0f}")
        if lo >= floor:
            return Judgement(Verdict.GREEN, f"{change} is above {bar}")
        if hi < floor:
            return Judgement(Verdict.RED, f"{change} is below {bar}")
        return Judgement(Verdict.INCONCLUSIVE, f"CTR change ({lo:+.4f}, {hi:+.4f}) straddles "
                         f"{bar}: more explored traffic needed")


def pre_traffic(lake: str, candidate: str, date: str, k: int, rule: PreTraffic,
                current: str | None = None, variant: str = "control") -> dict[str, Any]:
    """The candidate's CTR@k estimated from the day's explored logs against the current
    ranker's (the pages it served, or `current` replayed the same way as the candidate),
    judged by `rule`."""
    from novarank.errors import ConfigError
    from novarank.evaluation.counterfactual import ClickModel, compare, examination
    from novarank.launch.replay import check_depth, logged_pages, replay, trending_log

    pages, contexts = logged_pages(lake, date)
    if not pages:
        raise ConfigError(f"no feed ranking with an exploration window on {date} in {lake}: "
                          "serve with NOVARANK_EXPLORATION_EPSILON > 0 first")
    check_depth(pages, k)
    trending = trending_log(lake, date)
    cand = [r.items for r in replay(candidate, contexts, trending, k, variant,
                                    logged_weights=False)]
    base = ([r.items for r in replay(current, contexts, trending, k, variant)] if current
            else [list(p.window[:k]) for p in pages])  # the logging ranker's own first page
    # one click model and one examination curve for all three: the same logs
    cm, theta = ClickModel.fit(pages, k), examination(pages, k)
    now, new = estimate(pages, base, k, cm, theta), estimate(pages, cand, k, cm, theta)
    diff = compare(pages, cand, base, k, cm, theta)
    judged = rule.judge(now[rule.estimator], diff[rule.estimator])
    return {"date": date, "candidate": candidate, "pages": len(pages), "k": k,
            "current_release": current or "the served pages",
            "current": {e: x.to_dict() for e, x in now.items()},
            "candidate_ctr": {e: x.to_dict() for e, x in new.items()},
            "change": {e: x.to_dict() for e, x in diff.items()},
            "rule": {"estimator": rule.estimator, "margin": rule.margin,
                     "min_effective": rule.min_effective, "min_support": rule.min_support},
            "verdict": judged.verdict, "reason": judged.reason}
