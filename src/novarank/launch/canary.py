"""Canary against stable on one rollout step: per-release samples from the lake, and the
tests that judge them.

Error rate and CTR use an always-valid one-sided test on the two arms' counters (the
mixture SPRT of launch/sequential.py): the controller reads them at every tick, and a
fixed-horizon z-test read that often calls a third of A/A steps significant. Latency
uses a one-sided Mann-Whitney U test, within a cache level (hits with hits, misses with
misses): a new release starts with a cold cache, and comparing its misses with the stable
release's hits would blame the release for the cache. A check fails only when the harm is both
significant and larger than the policy's margin, so big samples do not stop a rollout over
a trivial difference.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np
from scipy import stats

from novarank.analytics.srm import SRM_ALPHA, sequential_p
from novarank.launch.sequential import TAU, rate_greater_p
from novarank.online.releases import RolloutPolicy

LEVELS = {"hit": ("l1", "l2"), "miss": ("miss",)}
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


def _error_rate(c: Arm, s: Arm, policy: RolloutPolicy, alpha: float) -> Check:
    n = {"canary": c.attempts, "stable": s.attempts}
    level = policy.sequential_alpha  # always valid: the same level at every look
    rule = (f"fail if canary - stable > {policy.max_error_increase:g} and always-valid "
            f"one-sided p < {level:g} (at any look); needs {policy.min_requests} feeds "
            "per arm")
    if min(n.values()) < policy.min_requests:
        return Check("error_rate", "no_data", None, None, n, rule=rule)
    rc, rs = c.errors / c.attempts, s.errors / s.attempts
    p = rate_greater_p(c.errors, c.attempts, s.errors, s.attempts, TAU["error_rate"])
    bad = p < level and rc - rs > policy.max_error_increase
    return Check("error_rate", "fail" if bad else "pass", rc, rs, n, p, rc - rs, rule)


def _latency(c: Arm, s: Arm, level: str, policy: RolloutPolicy, alpha: float) -> Check:
    a, b = c.latency_ms.get(level, np.empty(0)), s.latency_ms.get(level, np.empty(0))
    n = {"canary": len(a), "stable": len(b)}
    need = max(20, policy.min_requests // MIN_LEVEL_SHARE)
    rule = (f"fail if canary median > stable median x {1 + policy.max_latency_increase:g} "
            f"and + {policy.min_latency_increase_ms:g} ms, and Mann-Whitney one-sided "
            f"p < {alpha:g}; needs {need} {level}s per arm")
    if min(n.values()) < need:
        return Check(f"latency_{level}", "no_data", None, None, n, rule=rule)
    mc, ms = float(np.median(a)), float(np.median(b))
    p = float(stats.mannwhitneyu(a, b, alternative="greater").pvalue)
    ratio = mc / ms if ms > 0 else math.inf
    bad = (p < alpha and ratio > 1 + policy.max_latency_increase
           and mc - ms > policy.min_latency_increase_ms)
    return Check(f"latency_{level}", "fail" if bad else "pass", mc, ms, n, p, ratio - 1, rule)


def _ctr(c: Arm, s: Arm, policy: RolloutPolicy, alpha: float) -> Check:
    n = {"canary": c.impressions, "stable": s.impressions}
    level = policy.sequential_alpha
    rule = (f"fail if canary CTR < stable CTR x {1 - policy.max_ctr_drop:g} and "
            f"always-valid one-sided p < {level:g} (at any look); needs "
            f"{policy.min_impressions} impressions per arm")
    if min(n.values()) < max(policy.min_impressions, 1):
        verdict = "no_data" if policy.min_impressions else "pass"
        return Check("ctr", verdict, None, None, n, rule=rule + " (not required)"
                     if not policy.min_impressions else rule)
    rc, rs = c.clicks / c.impressions, s.clicks / s.impressions
    p = rate_greater_p(s.clicks, s.impressions, c.clicks, c.impressions, TAU["ctr"])
    drop = 1 - rc / rs if rs > 0 else 0.0
    bad = p < level and drop > policy.max_ctr_drop
    return Check("ctr", "fail" if bad else "pass", rc, rs, n, p, -drop, rule)


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


def compare(canary: Arm, stable: Arm, policy: RolloutPolicy, alpha: float,
            canary_percent: float | None = None) -> Analysis:
    """Fail if any check fails; no_data while a required one lacks samples; else pass.
    Latency needs at least one cache level with enough samples on both sides. With
    `canary_percent`, the users' split is checked against it too."""
    lat = [_latency(canary, stable, level, policy, alpha) for level in LEVELS]
    tested = [c for c in lat if c.verdict != "no_data"]
    checks = [_error_rate(canary, stable, policy, alpha), *(tested or lat[:1]),
              _ctr(canary, stable, policy, alpha)]
    if canary_percent is not None:
        checks.append(_split(canary, stable, canary_percent))
    if any(c.verdict == "fail" for c in checks):
        verdict = "fail"
    elif any(c.verdict == "no_data" for c in checks):
        verdict = "no_data"
    else:
        verdict = "pass"
    return Analysis(verdict, alpha, checks)


def _days(since: float, until: float) -> list[str]:
    d, end = datetime.fromtimestamp(since, UTC).date(), datetime.fromtimestamp(until, UTC).date()
    out = []
    while d <= end:
        out.append(d.isoformat())
        d += timedelta(days=1)
    return out


def lake_samples(lake: str | Path, canary: str, stable: str, since: float,
                 until: float) -> dict[str, Arm]:
    """Feeds, 5xx feed errors, impressions and clicks per release since `since` (unix s),
    read from the telemetry lake. Impressions and clicks join to their feed by request_id."""
    import duckdb

    from novarank.analytics.lake import parquet_source, scan, sql_str

    files: dict[str, list[str]] = {"request": [], "error": [], "impression": [], "click": []}
    for day in _days(since, until):
        found = scan(lake, day, since=since - 5)
        for kind in files:
            files[kind] += [str(p) for p in found.files.get(kind, [])]
    arms = {canary: Arm(), stable: Arm()}
    if not files["request"] and not files["error"]:
        return arms
    con = duckdb.connect()
    since_ms = int(since * 1000)
    versions = f"{sql_str(canary)}, {sql_str(stable)}"

    def src(kind: str) -> str:
        return parquet_source(files[kind])

    if files["request"]:
        con.execute(f"CREATE VIEW feeds AS SELECT DISTINCT ON (event_id) * FROM "
                    f"{src('request')} WHERE route = 'feed' AND ts >= {since_ms} "
                    f"AND release IN ({versions})")
        for release, cache, lat in con.execute(
                "SELECT release, cache, list(latency_ms) FROM feeds GROUP BY release, cache"
                ).fetchall():
            arm = arms[release]
            for level, names in LEVELS.items():
                if cache in names:
                    arm.latency_ms[level] = np.concatenate(
                        [arm.latency_ms.get(level, np.empty(0)), np.asarray(lat, float)])
            arm.requests += len(lat)
        for release, first in con.execute("SELECT release, min(ts) FROM feeds GROUP BY release"
                                          ).fetchall():
            arms[release].first_ts = first / 1000
        for kind in ("impression", "click"):
            if not files[kind]:
                continue
            for release, n in con.execute(
                    f"SELECT f.release, count(DISTINCT e.event_id) FROM {src(kind)} e "
                    "JOIN feeds f USING (request_id) GROUP BY f.release").fetchall():
                setattr(arms[release], f"{kind}s", int(n))
    if files["error"]:
        for release, n, first in con.execute(
                f"SELECT release, count(DISTINCT event_id), min(ts) FROM {src('error')} "
                f"WHERE status >= 500 AND route LIKE '%/feed' AND ts >= {since_ms} "
                f"AND release IN ({versions}) GROUP BY release").fetchall():
            arm = arms[release]
            arm.errors = int(n)
            arm.first_ts = min(first / 1000, arm.first_ts or math.inf)
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
