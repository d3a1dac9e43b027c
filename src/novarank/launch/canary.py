"""Canary against stable on one rollout step: per-release samples from the lake, and the
tests that judge them.

Every check is always valid (the mixture SPRT of analytics/sequential.py): the controller
reads them all at every tick, and a fixed-horizon test read that often calls a third of
A/A steps significant. `sequential_alpha` is the step's whole false-rollback budget,
over every look and every guardrail: each of the GUARDRAILS gets an equal share of it
(Bonferroni), so a good canary is rolled back with probability at most that. Error rate
and CTR are tested on the two arms' counters; latency on log latency, within a cache
level (hits with hits, misses with misses): a new release starts with a cold cache, and
comparing its misses with the stable release's hits would blame the release for the
cache. A check fails only when the harm is both significant and larger than the
policy's margin, so big samples do not stop a rollout over a trivial difference.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from novarank.analytics.sequential import (
    TAU,
    confidence_radius,
    greater_p,
    latency_greater_p,
    log_mean_difference,
    mean_difference,
    rate_difference,
    rate_greater_p,
)
from novarank.analytics.srm import SRM_ALPHA, sequential_p
from novarank.online.releases import RolloutPolicy

LEVELS = {"hit": ("l1", "l2"), "miss": ("miss",)}
# the guardrails share the budget; by_cohort's share is split over every check (the
# five above it) of every cohort
GUARDRAILS = ("error_rate", "latency_hit", "latency_miss", "ctr", "watched_fraction",
              "by_cohort")
COHORTS = ("new", "cold", "light", "medium", "heavy")  # online/window.py: cohort()
MIN_LEVEL_SHARE = 10  # a cache level is compared once both arms have min_requests / 10
# replicas follow a step within about a second (refresh_s); until then the canary's share
# of users is still the previous step's, so the split is counted from a little later
SPLIT_GRACE_S = 5.0


@dataclass
class Arm:
    """One release's feeds since the step began."""

    latency_ms: dict[str, np.ndarray] = field(default_factory=dict)  # level -> samples
    requests: int = 0  # feeds answered
    errors: int = 0  # feeds that failed with a 5xx
    impressions: int = 0
    clicks: int = 0
    users: int = 0  # distinct users with a feed since the canary went live on every replica
    watched: np.ndarray = field(default_factory=lambda: np.empty(0))  # fraction per watch
    cohorts: dict[str, Arm] = field(default_factory=dict)  # the same, per user cohort
    first_ts: float | None = None  # unix s of its first feed (answered or failed)

    @property
    def attempts(self) -> int:
        return self.requests + self.errors


@dataclass
class Check:
    metric: str
    verdict: str  # pass | fail | no_data
    canary: float | None
    stable: float | None
    samples: dict[str, int]
    p_value: float | None = None
    effect: float | None = None
    rule: str = ""
    # the harm's always-valid upper bound (the effect's units) and whether it is inside
    # the margin: what a step needs under `promotion: non_inferior` (None: not a harm)
    worst: float | None = None
    non_inferior: bool | None = None


@dataclass
class Analysis:
    verdict: str  # pass | fail | no_data
    alpha: float
    checks: list[Check]

    def failing(self) -> list[Check]:
        return [c for c in self.checks if c.verdict == "fail"]

    def missing(self) -> list[Check]:
        return [c for c in self.checks if c.verdict == "no_data"]

    def to_dict(self) -> dict[str, Any]:
        return {"verdict": self.verdict, "alpha": self.alpha,
                "checks": [{k: _round(v) for k, v in asdict(c).items()} for c in self.checks]}


def _round(v: Any) -> Any:
    return round(v, 6) if isinstance(v, float) else v


def _worst(est: float, var: float, tau: float, level: float) -> float:
    """The largest harm the always-valid confidence sequence still allows."""
    return est + (confidence_radius(var, tau, level) if var > 0 else 0.0)


def check_level(policy: RolloutPolicy) -> float:
    """The level each guardrail is read at: its share of the step's budget."""
    return policy.sequential_alpha / len(GUARDRAILS)


def cohort_level(policy: RolloutPolicy) -> float:
    """The level of one check in one cohort: by_cohort's share, split over them all."""
    return check_level(policy) / (len(COHORTS) * (len(GUARDRAILS) - 1))


def _error_rate(c: Arm, s: Arm, policy: RolloutPolicy, level: float, suffix: str) -> Check:
    n = {"canary": c.attempts, "stable": s.attempts}
    rule = (f"fail if canary - stable > {policy.max_error_increase:g} and always-valid "
            f"one-sided p < {level:g} (at any look); needs {policy.min_requests} feeds "
            "per arm")
    if min(n.values()) < policy.min_requests:
        return Check(f"error_rate{suffix}", "no_data", None, None, n, rule=rule)
    rc, rs = c.errors / c.attempts, s.errors / s.attempts
    p = rate_greater_p(c.errors, c.attempts, s.errors, s.attempts, TAU["error_rate"])
    bad = p < level and rc - rs > policy.max_error_increase
    est, var = rate_difference(c.errors, c.attempts, s.errors, s.attempts)
    worst = _worst(float(est), float(var), TAU["error_rate"], level)
    return Check(f"error_rate{suffix}", "fail" if bad else "pass", rc, rs, n, p, rc - rs, rule,
                 worst, worst <= policy.max_error_increase)


def _latency(c: Arm, s: Arm, level: str, policy: RolloutPolicy, alpha: float,
             suffix: str) -> Check:
    a, b = c.latency_ms.get(level, np.empty(0)), s.latency_ms.get(level, np.empty(0))
    n = {"canary": len(a), "stable": len(b)}
    need = max(20, policy.min_requests // MIN_LEVEL_SHARE)
    rule = (f"fail if canary median > stable median x {1 + policy.max_latency_increase:g} "
            f"and + {policy.min_latency_increase_ms:g} ms, and always-valid one-sided "
            f"p < {alpha:g} on log latency (at any look); needs {need} {level}s per arm")
    if min(n.values()) < need:
        return Check(f"latency_{level}{suffix}", "no_data", None, None, n, rule=rule)
    mc, ms = float(np.median(a)), float(np.median(b))
    p = latency_greater_p(a, b)
    ratio = mc / ms if ms > 0 else math.inf
    bad = (p < alpha and ratio > 1 + policy.max_latency_increase
           and mc - ms > policy.min_latency_increase_ms)
    worst = float(np.expm1(_worst(*log_mean_difference(a, b), TAU["latency"], alpha)))
    return Check(f"latency_{level}{suffix}", "fail" if bad else "pass", mc, ms, n, p, ratio - 1,
                 rule, worst, worst <= policy.max_latency_increase)


def _ctr(c: Arm, s: Arm, policy: RolloutPolicy, level: float, suffix: str) -> Check:
    n = {"canary": c.impressions, "stable": s.impressions}
    rule = (f"fail if canary CTR < stable CTR x {1 - policy.max_ctr_drop:g} and "
            f"always-valid one-sided p < {level:g} (at any look); needs "
            f"{policy.min_impressions} impressions per arm")
    if min(n.values()) < max(policy.min_impressions, 1):
        verdict = "no_data" if policy.min_impressions else "pass"
        return Check(f"ctr{suffix}", verdict, None, None, n, rule=rule + " (not required)"
                     if not policy.min_impressions else rule)
    return _judge_ctr(f"ctr{suffix}", (c.impressions, c.clicks), (s.impressions, s.clicks),
                      level, policy, rule)


def _judge_ctr(metric: str, canary: tuple[int, int], stable: tuple[int, int], level: float,
               policy: RolloutPolicy, rule: str) -> Check:
    """A CTR check from (impressions, clicks) per arm: harm is the canary's relative drop."""
    (ci, cc), (si, sc) = canary, stable
    rc, rs = cc / ci, sc / si
    p = rate_greater_p(sc, si, cc, ci, TAU["ctr"])
    drop = 1 - rc / rs if rs > 0 else 0.0
    bad = p < level and drop > policy.max_ctr_drop
    est, var = rate_difference(sc, si, cc, ci)  # stable - canary: the harm, absolute
    worst = _worst(float(est), float(var), TAU["ctr"], level) / rs if rs > 0 else math.inf
    return Check(metric, "fail" if bad else "pass", rc, rs, {"canary": ci, "stable": si}, p,
                 -drop, rule, worst, worst <= policy.max_ctr_drop)


def _watched(c: Arm, s: Arm, policy: RolloutPolicy, level: float, suffix: str) -> Check:
    """The mean watched fraction of the feeds' watch events: harm is the canary's relative
    fall. Not required while `min_watches` is 0 (a catalog may have nothing to watch)."""
    n = {"canary": len(c.watched), "stable": len(s.watched)}
    need = max(policy.min_watches, 2)
    rule = (f"fail if canary's mean watched fraction < stable's x "
            f"{1 - policy.max_watch_drop:g} and always-valid one-sided p < {level:g} (at any "
            f"look); needs {policy.min_watches} watches per arm")
    if min(n.values()) < need:
        verdict = "no_data" if policy.min_watches else "pass"
        return Check(f"watched_fraction{suffix}", verdict, None, None, n,
                     rule=rule if policy.min_watches else rule + " (not required)")
    mc, ms = float(c.watched.mean()), float(s.watched.mean())
    est, var = mean_difference(s.watched, c.watched)  # stable - canary: the harm
    p = float(greater_p(est, var, TAU["watched_fraction"]))
    drop = 1 - mc / ms if ms > 0 else 0.0
    bad = p < level and drop > policy.max_watch_drop
    worst = _worst(est, var, TAU["watched_fraction"], level) / ms if ms > 0 else math.inf
    return Check(f"watched_fraction{suffix}", "fail" if bad else "pass", mc, ms, n, p, -drop,
                 rule, worst, worst <= policy.max_watch_drop)


def _checks(c: Arm, s: Arm, policy: RolloutPolicy, level: float, suffix: str = ""
            ) -> list[Check]:
    """Every guardrail of two arms at one level: error rate, latency per cache level (the
    tested ones, else the first), CTR, watched fraction."""
    lat = [_latency(c, s, cache, policy, level, suffix) for cache in LEVELS]
    tested = [x for x in lat if x.verdict != "no_data"]
    return [_error_rate(c, s, policy, level, suffix), *(tested or lat[:1]),
            _ctr(c, s, policy, level, suffix), _watched(c, s, policy, level, suffix)]


def _by_cohort(canary: Arm, stable: Arm, policy: RolloutPolicy) -> list[Check]:
    """The same checks within each user cohort, each at its share of by_cohort's budget:
    a release that only hurts cold users hides in the totals. A check is kept once both
    arms have its samples in that cohort (a small cohort never holds up a step)."""
    level = cohort_level(policy)
    return [x for g in COHORTS
            for x in _checks(canary.cohorts.get(g, Arm()), stable.cohorts.get(g, Arm()),
                             policy, level, f"_{g}")
            if x.verdict != "no_data" and x.canary is not None]


def _split(c: Arm, s: Arm, percent: float) -> Check:
    """Users per arm against the planned canary share, anytime-valid (a broken split makes
    every other comparison meaningless: the controller halts on it, see rollout.py)."""
    n = {"canary": c.users, "stable": s.users}
    share = percent / 100.0
    rule = (f"fail if the users' split departs from {percent:g}% canary: anytime-valid "
            f"Dirichlet-multinomial p < {SRM_ALPHA:g} (at any look)")
    total = c.users + s.users
    if not total or not 0 < share < 1:
        return Check("sample_ratio", "pass", None, share, n, rule=rule)
    p = sequential_p([c.users, s.users], [share, 1 - share])
    return Check("sample_ratio", "fail" if p < SRM_ALPHA else "pass", c.users / total, share,
                 n, p, c.users / total - share, rule)


def compare(canary: Arm, stable: Arm, policy: RolloutPolicy,
            canary_percent: float | None = None) -> Analysis:
    """Fail if any check fails; no_data while a required one lacks samples; else pass.
    Latency needs at least one cache level with enough samples on both sides. With
    `canary_percent`, the users' split is checked against it too."""
    checks = [*_checks(canary, stable, policy, check_level(policy)),
              *_by_cohort(canary, stable, policy)]
    if canary_percent is not None:
        checks.append(_split(canary, stable, canary_percent))
    if any(c.verdict == "fail" for c in checks):
        verdict = "fail"
    elif any(c.verdict == "no_data" for c in checks):
        verdict = "no_data"
    else:
        verdict = "pass"
    return Analysis(verdict, policy.sequential_alpha, checks)


def lake_samples(lake: str | Path, canary: str, stable: str, since: float,
                 until: float) -> dict[str, Arm]:
    """Feeds, 5xx feed errors, impressions, clicks and watches per release since `since`
    (unix s), read from the telemetry lake. Client events join to their feed by
    request_id."""
    import duckdb

    from novarank.analytics.lake import files_between, parquet_source, sql_str

    files = files_between(lake, ("request", "error", "impression", "click", "engagement"),
                          since, until)
    arms = {canary: Arm(), stable: Arm()}
    if not files["request"] and not files["error"]:
        return arms
    con = duckdb.connect()
    since_ms = int(since * 1000)
    versions = f"{sql_str(canary)}, {sql_str(stable)}"

    def src(kind: str) -> str:
        return parquet_source(files[kind])

    def into(release: str, cohort: str | None) -> list[Arm]:
        """The release's arm, and its cohort's when the feed was tagged with one."""
        arm = arms[release]
        return [arm] if cohort is None else [arm, arm.cohorts.setdefault(cohort, Arm())]

    if files["request"]:
        raw = f"SELECT * FROM {src('request')} LIMIT 0"
        tagged = "cohort" in [d[0] for d in con.execute(raw).description]
        con.execute(f"CREATE VIEW feeds AS SELECT DISTINCT ON (event_id) *"
                    f"{'' if tagged else ', NULL::VARCHAR AS cohort'} FROM {src('request')} "
                    f"WHERE route = 'feed' AND ts >= {since_ms} AND release IN ({versions})")
        for release, cohort, cache, lat in con.execute(
                "SELECT release, cohort, cache, list(latency_ms) FROM feeds GROUP BY ALL"
                ).fetchall():
            for arm in into(release, cohort):
                for level, names in LEVELS.items():
                    if cache in names:
                        arm.latency_ms[level] = np.concatenate(
                            [arm.latency_ms.get(level, np.empty(0)), np.asarray(lat, float)])
                arm.requests += len(lat)
        for release, first in con.execute("SELECT release, min(ts) FROM feeds GROUP BY release"
                                          ).fetchall():
            arms[release].first_ts = first / 1000
        if files["engagement"]:
            for release, cohort, values in con.execute(
                    f"SELECT f.release, f.cohort, list(e.value) FROM (SELECT DISTINCT ON "
                    f"(event_id) * FROM {src('engagement')} WHERE kind = 'watch' AND value IS "
                    "NOT NULL) e JOIN feeds f USING (request_id) GROUP BY ALL").fetchall():
                for arm in into(release, cohort):
                    arm.watched = np.concatenate([arm.watched, np.asarray(values, float)])
        for kind in ("impression", "click"):
            if not files[kind]:
                continue
            for release, cohort, n in con.execute(
                    f"SELECT f.release, f.cohort, count(DISTINCT e.event_id) FROM {src(kind)} e "
                    "JOIN feeds f USING (request_id) GROUP BY ALL").fetchall():
                for arm in into(release, cohort):
                    setattr(arm, f"{kind}s", getattr(arm, f"{kind}s") + int(n))
    if files["error"]:
        # an error has no ranking, so no cohort of its own: its user's, from their feeds
        cohorts = ("(SELECT user_key, any_value(cohort) AS cohort FROM feeds GROUP BY "
                   "user_key)" if files["request"] else
                   "(SELECT NULL::VARCHAR AS user_key, NULL::VARCHAR AS cohort WHERE false)")
        for release, cohort, n, first in con.execute(
                f"SELECT e.release, u.cohort, count(DISTINCT e.event_id), min(e.ts) FROM "
                f"{src('error')} e LEFT JOIN {cohorts} u USING (user_key) WHERE e.status >= 500 "
                f"AND e.route LIKE '%/feed' AND e.ts >= {since_ms} AND e.release IN "
                f"({versions}) GROUP BY ALL").fetchall():
            for arm in into(release, cohort):
                arm.errors += int(n)
            arms[release].first_ts = min(first / 1000, arms[release].first_ts or math.inf)
    live = arms[canary].first_ts
    if live is not None:  # users per arm, once every replica routes the canary
        from_ms = int((live + SPLIT_GRACE_S) * 1000)
        seen = ["SELECT release, user_key, ts FROM feeds"] if files["request"] else []
        if files["error"]:
            seen.append(f"SELECT release, user_key, ts FROM {src('error')} WHERE status >= 500 "
                        f"AND route LIKE '%/feed' AND release IN ({versions})")
        if seen:
            for release, users in con.execute(
                    f"SELECT release, count(DISTINCT user_key) FROM ({' UNION ALL '.join(seen)}) "
                    f"WHERE user_key IS NOT NULL AND ts >= {from_ms} GROUP BY release"
                    ).fetchall():
                arms[release].users = int(users)
    con.close()
    return arms
