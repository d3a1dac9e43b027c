"""Off-policy estimates checked against the simulator's truth.

A logging ranker serves simulated users with exploration on; each candidate ranker's CTR
is then estimated from those logs alone and compared with its true CTR: the expected
clicks per slot had it served the very same requests, from the simulator's click model.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass

import numpy as np

from novarank.evaluation.counterfactual import Estimate, LoggedPage, depth, estimate
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
    estimator: str = "snips"  # robust to a uniform scale error in the propensities

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


def logged_pages(lake: str, date: str, release: str | None = None
                 ) -> tuple[list[LoggedPage], list[str], list[int]]:
    """The day's first pages that carry their exploration window, with their clicks, and
    each one's user key and ranking time (unix s; the request's time for parts written
    before `ranked_at`); with `release`, only the pages that release served."""
    import duckdb
    import pyarrow.parquet as pq

    from novarank.analytics.lake import parquet_source, scan, sql_str

    found = scan(lake, date)
    rankings, clicks = found.files.get("ranking", []), found.files.get("click", [])
    if not rankings:
        return [], [], []
    columns = {n for f in rankings for n in pq.read_schema(f).names}
    if "window" not in columns:  # written before exploration existed
        return [], [], []
    ranked_at = "coalesce(ranked_at, ts // 1000)" if "ranked_at" in columns else "ts // 1000"
    con = duckdb.connect()
    source = parquet_source(rankings)
    only = f" AND release = {sql_str(release)}" if release is not None else ""
    rows = con.sql(f'SELECT request_id, user_key, "window", epsilon, items, {ranked_at} '
                   f'FROM {source} WHERE "window" IS NOT NULL{only} '
                   "ORDER BY ts, request_id").fetchall()
    clicked: dict[str, set[int]] = {}
    if clicks:
        for rid, pos in con.sql(f"SELECT request_id, position FROM {parquet_source(clicks)} "
                                "WHERE position IS NOT NULL").fetchall():
            clicked.setdefault(rid, set()).add(int(pos))
    con.close()
    pages = [LoggedPage(tuple(w), float(eps), tuple(items), frozenset(clicked.get(rid, ())))
             for rid, _, w, eps, items, _ in rows]
    return pages, [r[1] for r in rows], [int(r[5]) for r in rows]


def check_depth(pages: list[LoggedPage], k: int) -> None:
    """Refuse a page size the logs cannot speak for: past the pages served (no click was
    possible there) or past the exploration window (no chance was logged)."""
    from novarank.errors import InputError

    if k > depth(pages):
        raise InputError("k", f"must be at most the logged pages' depth ({depth(pages)}: the "
                         f"page size served and the exploration window), got {k}")


def release_pages(release: str, user_keys: list[str], times: list[int], k: int,
                  variant: str = "control") -> list[list[str]]:
    """What `release` would have shown each logged request's user at that time, from the
    release's own history and its trending decayed to that time, as the service ranks
    (live engagement and live trending are not replayed). A key the release does not know
    ranks as a newcomer."""
    from novarank.ranking.recommender import Recommender
    from novarank.release import load_release
    from novarank.telemetry.schemas import user_key

    model, index, _ = load_release(release)
    rec = Recommender(model, index=index)
    by_key = {user_key(u): u for u in model.user_ids.tolist()}
    weights = rec.weights(variant)
    out: list[list[str]] = []
    at = None
    for key, now in zip(user_keys, times, strict=True):
        if now != at:  # a catalog-wide decay and sort: once per second of logs, not per page
            rec.catalog, at = rec.catalog_at(now), now
        r = rec.rank(rec.profile(by_key.get(key, f"\x00unknown:{key}")), k, weights, now)
        out.append([str(model.item_ids[i]) for i in np.concatenate([r.items, r.backfill])[:k]])
    return out
