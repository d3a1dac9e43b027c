"""False rollbacks and detection of the canary's tests, old judge against new, on the same
simulated traffic.

Each simulated rollout step looks `--looks` times (500 users per arm per look for the
rates, 20 feeds per arm per look for latency, as the controller re-reads the lake every
tick). The old judge is the controller's rule before the sequential engine: a one-sided
fixed-horizon test (two-proportion z-test for rates, Mann-Whitney U for latency) at
OLD_EARLY_ALPHA on every look and at OLD_ALPHA on the last. The new judge reads the
always-valid p-value (analytics/sequential.py) on every look at its guardrail's share of
`sequential_alpha` (0.05, the whole step's false-rollback budget, split over the
guardrails); "growthbook" is GrowthBook's sequential test (growthbook_p) and
"netflix_counts" a sequential test on the arms' counts after Netflix's (counts_p; rates
only: latency is not a count), each read the same way at the same level. "Peeking" is
the fixed-horizon test at 0.05 read at every look. The rate and latency scenarios judge
the evidence alone (the practical margins apply to every judge alike); the cohort
scenarios apply the margins too, since a harm to one cohort only shows against them: the
overall CTR of "ab_ctr_cold_minus_40pct" falls 6%, inside the 10% margin. "aa_overall"
is a step judged on every A/A guardrail at once (error rate, latency, CTR overall and by
cohort): rolled back when any of them is.

Run: .venv/bin/python bench/bench_sequential.py [--runs 2000 --looks 100]
"""

from __future__ import annotations

import argparse

import numpy as np
from scipy import special, stats

from common import write
from novarank.analytics.sequential import LATENCY_FLOOR_MS, TAU, greater_p, rate_difference
from novarank.launch.canary import GUARDRAILS, check_level, cohort_level
from novarank.online.releases import RolloutPolicy

PER_LOOK = 500
LATENCY_PER_LOOK = 20
LATENCY_SIGMA = 0.6  # log-normal feed latency: p99 ~4x the median, as a miss mix looks
OLD_EARLY_ALPHA, OLD_ALPHA = 0.001, 0.01  # the fixed-horizon judge's two levels
GROWTHBOOK_TUNING = 5_000  # gbstats' default sequential_tuning_parameter
COUNTS_PRIOR = 10.0  # k of counts_p's Beta prior: shares within ~±0.15 of θ0 are plausible
SCENARIOS = {  # name -> (guardrail, base, canary's change; CTR falls = harm)
    "aa_error_rate": ("error_rate", 0.01, 0.0),
    "aa_ctr": ("ctr", 0.10, 0.0),
    "aa_latency": ("latency", 5.0, 0.0),  # median ms; change: relative
    "ab_error_rate_plus_0_5pp": ("error_rate", 0.01, 0.005),
    "ab_ctr_minus_10pct": ("ctr", 0.10, -0.01),
    "ab_latency_plus_20pct": ("latency", 5.0, 0.2),
    # CTR overall and per cohort, margins applied: cold users' CTR -40%, the others' as is
    "aa_ctr_by_cohort": ("ctr_by_cohort", 0.10, 0.0),
    "ab_ctr_cold_minus_40pct": ("ctr_by_cohort", 0.10, -0.04),
}
COHORT_SHARES = {"new": 0.05, "cold": 0.15, "light": 0.20, "medium": 0.35, "heavy": 0.25}
OVERALL = ("aa_error_rate", "aa_latency", "aa_ctr_by_cohort")  # every guardrail of a step


def wilson(k: int, n: int) -> list[float]:
    """The 95% Wilson interval of k successes in n."""
    z, p = 1.96, k / n
    centre, half = p + z * z / (2 * n), z * np.sqrt(p * (1 - p) / n + z * z / (4 * n * n))
    return [round(float((centre - half) / (1 + z * z / n)), 5),
            round(float((centre + half) / (1 + z * z / n)), 5)]


def _first(flagged: np.ndarray) -> np.ndarray:
    """Per run, the first look (1-based) flagged, 0 for never."""
    return np.where(flagged.any(axis=1), flagged.argmax(axis=1) + 1, 0)


def growthbook_p(est: np.ndarray, var: np.ndarray, n: np.ndarray, alpha: float
                 ) -> np.ndarray:
    """GrowthBook's sequential p-value (gbstats 0.8.0, SequentialTwoSidedTTest, after
    Waudby-Smith et al.: a two-sided normal mixture tuned by N* = GROWTHBOOK_TUNING) for an
    estimate with variance `var` from `n` samples in all; one-sided use: harm only."""
    rho2 = (-2 * np.log(alpha) + np.log(-2 * np.log(alpha) + 1)) / GROWTHBOOK_TUNING
    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
        st2 = est * est * n / var
        tr2p1 = n * rho2 + 1
        evalue = np.exp(rho2 * st2 / (2 * tr2p1)) / np.sqrt(tr2p1)
        p = np.minimum(1 / evalue, 1.0)
    return np.where(est > 0, np.nan_to_num(p, nan=1.0), 1.0)


def counts_p(x_canary: np.ndarray, x_stable: np.ndarray, n_canary: np.ndarray,
             n_stable: np.ndarray, more: bool) -> np.ndarray:
    """A sequential test on counts after Netflix's (Lindon, Sanden & Shirikian, KDD 2022):
    given the total count, the canary's share of it is binomial, with θ0 its share of the
    exposure when both rates are equal; a Beta(k θ0, k (1 - θ0)) mixture over θ gives the
    Bayes factor against θ0, a martingale under the null, so 1/BF is always valid. One-sided
    use: harm only (`more`: the canary's share is too high, else too low)."""
    theta0 = n_canary / (n_canary + n_stable)
    a, b = COUNTS_PRIOR * theta0, COUNTS_PRIOR * (1 - theta0)
    log_bf = (special.betaln(a + x_canary, b + x_stable) - special.betaln(a, b)
              - x_canary * np.log(theta0) - x_stable * np.log(1 - theta0))
    share = x_canary / np.maximum(x_canary + x_stable, 1)
    harmful = share > theta0 if more else share < theta0
    return np.where(harmful, np.minimum(np.exp(-log_bf), 1.0), 1.0)


def _judges(fixed_p: np.ndarray, seq_p: np.ndarray, gb_p: np.ndarray,
            counts: np.ndarray | None = None) -> dict[str, np.ndarray]:
    last = np.zeros(fixed_p.shape[1], bool)
    last[-1] = True
    level = check_level(RolloutPolicy())
    out = {"peeking_0.05": _first(fixed_p < 0.05),
           "old_judge": _first((fixed_p < OLD_EARLY_ALPHA) | (last & (fixed_p < OLD_ALPHA))),
           "growthbook": _first(gb_p < level)}
    if counts is not None:
        out["netflix_counts"] = _first(counts < level)
    # always valid: the controller reads it at one level on every look
    return {**out, "new_judge": _first(seq_p < level)}


def simulate(guardrail: str, base: float, change: float, runs: int, looks: int,
             seed: int) -> dict[str, np.ndarray]:
    """Per judge, the first look (1-based) at which it rolls back, 0 for never."""
    rng = np.random.default_rng(seed)
    if guardrail == "latency":
        return simulate_latency(base, change, runs, looks, rng)
    if guardrail == "ctr_by_cohort":
        return simulate_cohorts(base, change, runs, looks, rng)
    canary = np.cumsum(rng.binomial(PER_LOOK, base + change, (runs, looks)), axis=1)
    stable = np.cumsum(rng.binomial(PER_LOOK, base, (runs, looks)), axis=1)
    n = PER_LOOK * np.arange(1, looks + 1)
    harm = (canary, n, stable, n) if guardrail == "error_rate" else (stable, n, canary, n)
    est, var = rate_difference(*harm)
    return _judges(stats.norm.sf(est / np.sqrt(var)), greater_p(est, var, TAU[guardrail]),
                   growthbook_p(est, var, 2 * n, check_level(RolloutPolicy())),
                   counts_p(canary, stable, n, n, more=guardrail == "error_rate"))


def simulate_cohorts(base: float, cold_change: float, runs: int, looks: int,
                     rng: np.random.Generator) -> dict[str, np.ndarray]:
    """CTR overall and in each cohort (COHORT_SHARES of the impressions), the cold
    cohort's CTR moved by `cold_change`. A judge rolls back when a check has evidence and
    a drop past the policy's margin; the new judge reads each cohort's CTR at its share of
    the by_cohort budget (cohort_level: that share split over every check of every
    cohort), the old judge reads every check at its fixed levels."""
    policy = RolloutPolicy()
    level = check_level(policy)
    steps = np.arange(1, looks + 1)
    shown = {g: int(PER_LOOK * share) for g, share in COHORT_SHARES.items()}
    canary = {g: np.cumsum(rng.binomial(n, base + (cold_change if g == "cold" else 0.0),
                                        (runs, looks)), axis=1) for g, n in shown.items()}
    stable = {g: np.cumsum(rng.binomial(n, base, (runs, looks)), axis=1)
              for g, n in shown.items()}
    groups = {g: (canary[g], stable[g], n * steps) for g, n in shown.items()}
    groups["all"] = (sum(canary.values()), sum(stable.values()), PER_LOOK * steps)
    flags: dict[str, np.ndarray] = {}
    last = np.zeros(looks, bool)
    last[-1] = True
    for g, (c, st, n) in groups.items():
        est, var = rate_difference(st, n, c, n)
        harm = 1 - (c / n) / np.maximum(st / n, 1e-12) > policy.max_ctr_drop
        fixed = stats.norm.sf(est / np.sqrt(var))
        seq = greater_p(est, var, TAU["ctr"])
        at = level if g == "all" else cohort_level(policy)
        gb = growthbook_p(est, var, 2 * n, at)
        for judge, hit in (("peeking_0.05", fixed < 0.05),
                           ("old_judge", (fixed < OLD_EARLY_ALPHA) | (last & (fixed < OLD_ALPHA))),
                           ("growthbook", gb < at),
                           ("netflix_counts", counts_p(c, st, n, n, more=False) < at),
                           ("new_judge", seq < at)):
            flags[judge] = flags.get(judge, np.zeros((runs, looks), bool)) | (hit & harm)
    return {judge: _first(f) for judge, f in flags.items()}


def simulate_latency(median_ms: float, change: float, runs: int, looks: int,
                     rng: np.random.Generator) -> dict[str, np.ndarray]:
    """Log-normal latencies, the canary's `change` slower; the new judge's statistic is
    latency_greater_p's (mean log difference), from running sums."""
    shape = (runs, looks * LATENCY_PER_LOOK)
    stable = median_ms * rng.lognormal(0.0, LATENCY_SIGMA, shape)
    canary = median_ms * (1 + change) * rng.lognormal(0.0, LATENCY_SIGMA, shape)
    ends = LATENCY_PER_LOOK * np.arange(1, looks + 1)

    def running(x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        lx = np.log(np.maximum(x, LATENCY_FLOOR_MS))
        s1, s2 = np.cumsum(lx, axis=1)[:, ends - 1], np.cumsum(lx * lx, axis=1)[:, ends - 1]
        mean = s1 / ends
        return mean, (s2 - ends * mean * mean) / (ends - 1) / ends  # var of the mean

    (mc, vc), (ms, vs) = running(canary), running(stable)
    seq_p = greater_p(mc - ms, vc + vs, TAU["latency"])
    fixed_p = np.column_stack([stats.mannwhitneyu(canary[:, :e], stable[:, :e], axis=1,
                                                  alternative="greater").pvalue for e in ends])
    return _judges(fixed_p, seq_p, growthbook_p(mc - ms, vc + vs, 2 * ends,
                                                check_level(RolloutPolicy())))


def overall(firsts: list[np.ndarray]) -> np.ndarray:
    """The first look at which any of the guardrails rolls back (0: none does)."""
    looks = np.stack([np.where(f > 0, f, np.iinfo(np.int64).max) for f in firsts]).min(axis=0)
    return np.where(looks == np.iinfo(np.int64).max, 0, looks)


def summarise(first: np.ndarray) -> dict:
    caught = first[first > 0]
    return {"rollback_rate": round(float(len(caught) / len(first)), 5),
            "rollback_rate_ci95": wilson(len(caught), len(first)),
            "median_looks_to_rollback": float(np.median(caught)) if len(caught) else None,
            "median_users_per_arm_to_rollback": float(np.median(caught)) * PER_LOOK
            if len(caught) else None}


def verdict(out: dict, alpha: float = 0.05, power: float = 0.95) -> dict[str, bool]:
    """A/A: the new judge's false rollbacks within alpha (the upper end of their 95%
    interval), each guardrail alone and all at once; A/B: it catches each harm within
    the step in at least `power` of the runs."""
    ok = {}
    for name, r in out.items():
        new = r["new_judge"]
        if name.startswith("aa_"):
            ok[f"{name}_false_rollbacks_within_alpha"] = new["rollback_rate_ci95"][1] <= alpha
        else:
            ok[f"{name}_caught"] = new["rollback_rate"] >= power
    return ok


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--runs", type=int, default=2_000)
    ap.add_argument("--looks", type=int, default=100)
    args = ap.parse_args()
    out = {}
    every = {}
    for seed, (name, (guardrail, base, change)) in enumerate(SCENARIOS.items()):
        every[name] = simulate(guardrail, base, change, args.runs, args.looks, seed)
        out[name] = {judge: summarise(f) for judge, f in every[name].items()}
    out["aa_overall"] = {judge: summarise(overall([every[n][judge] for n in OVERALL]))
                         for judge in every["aa_error_rate"]
                         if all(judge in every[n] for n in OVERALL)}
    write("sequential", {"runs": args.runs, "looks": args.looks, "users_per_arm_per_look":
                         PER_LOOK, "scenarios": {k: {"guardrail": g, "base": b, "change": c}
                                                 for k, (g, b, c) in SCENARIOS.items()},
                         "latency_feeds_per_arm_per_look": LATENCY_PER_LOOK,
                         "policy": {"early_alpha": OLD_EARLY_ALPHA, "alpha": OLD_ALPHA,
                                    "sequential_alpha": RolloutPolicy().sequential_alpha,
                                    "guardrails": len(GUARDRAILS),
                                    "per_guardrail": check_level(RolloutPolicy())},
                         "results": out, "pass": verdict(out)})


if __name__ == "__main__":
    main()
