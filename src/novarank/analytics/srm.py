"""Sample-ratio mismatch: is the observed split of units the one that was planned?

A fixed tolerance on the share (say 5 points) is the wrong test: with a few hundred users a
fair 50/50 split misses it about one day in ten, and with millions it hides a real bug.
Both the daily Outcomes tile and gate 4 judge the chi-square p-value of the counts instead,
and report each variant's share against a tolerance of three standard errors.
"""

from __future__ import annotations

from typing import Any

# the p-value below which the split is called broken: a fair split is flagged once in a
# thousand judgements, a real mismatch (a dropped arm, a biased hash) within a few hundred units
SRM_ALPHA = 0.001


def sample_ratio(observed: dict[str, int], planned: dict[str, float]) -> dict[str, Any]:
    """Chi-square of observed counts against the planned split, and each share's deviation
    against a tolerance that shrinks with the sample size."""
    from scipy.stats import chisquare

    n = sum(observed.values())
    total = sum(planned.values())
    shares = {v: s / total for v, s in planned.items()}
    obs = [observed.get(v, 0) for v in shares]
    outside = n - sum(obs)  # units on a variant the plan does not have: a mismatch outright
    exp = [shares[v] * sum(obs) for v in shares]
    p_value = None
    if n:  # one arm has no ratio to test: every unit is on it (1) or the plan is broken (0)
        p_value = 0.0 if outside else float(chisquare(obs, exp).pvalue) if len(shares) > 1 \
            else 1.0
    per_variant = {}
    for v, share in shares.items():
        seen = observed.get(v, 0) / n if n else 0.0
        tol = 3.0 * (share * (1 - share) / n) ** 0.5 if n else None  # three standard errors
        per_variant[v] = {"observed": round(seen, 4), "planned": round(share, 4),
                          "tolerance": None if tol is None else round(tol, 4),
                          "within": tol is not None and abs(seen - share) <= tol}
    deviation = max((abs(x["observed"] - x["planned"]) for x in per_variant.values()),
                    default=None) if n else None
    return {"n": n, "p_value": p_value, "per_variant": per_variant, "outside_plan": outside,
            "max_deviation": deviation,
            "within_tolerance": outside == 0 and all(x["within"] for x in per_variant.values())}
