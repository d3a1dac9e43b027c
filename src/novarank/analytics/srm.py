"""Sample-ratio mismatch: is the observed split of units the one that was planned?

A fixed tolerance on the share (say 5 points) is the wrong test: with a few hundred users a
fair 50/50 split misses it about one day in ten, and with millions it hides a real bug.
And the split is looked at again and again (every day on the Outcomes tile, every tick of
a rollout), so a fixed-horizon chi-square would call a fair split broken sooner or later.
The Outcomes tile, gate 4 and the rollout controller judge an anytime-valid p-value
instead (`sequential_p`), and report each variant's share against a tolerance of three
standard errors; the chi-square is kept beside it for reference.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
from scipy.special import gammaln

# the p-value below which the split is called broken: a fair split is flagged once in a
# thousand judgements, a real mismatch (a dropped arm, a biased hash) within a few hundred units
SRM_ALPHA = 0.001
CONCENTRATION = 100.0  # the Dirichlet prior's weight, in units: how far a split may stray


def sequential_p(observed: Sequence[int], planned: Sequence[float],
                 concentration: float = CONCENTRATION) -> float:
    """Anytime-valid p-value that the counts follow the planned shares: 1 / the Bayes
    factor of a Dirichlet(concentration x planned) mixture over splits against the plan
    (Lindon & Malek, "Anytime-valid inference for multinomial count data", NeurIPS 2022).
    Under the plan the chance that it ever falls below alpha, however often it is read as
    units arrive, is at most alpha. A unit on a variant planned at 0 is a mismatch: 0."""
    x, p0 = np.asarray(observed, float), np.asarray(planned, float)
    p0 = p0 / p0.sum()
    if (x[p0 == 0] > 0).any():
        return 0.0
    x, p0 = x[p0 > 0], p0[p0 > 0]
    a = concentration * p0
    log_bf = (gammaln(a.sum()) - gammaln(a.sum() + x.sum()) + (gammaln(a + x) - gammaln(a)).sum()
              - (x * np.log(p0)).sum())
    return float(min(1.0, np.exp(-log_bf)))


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
    p_value = fixed = None
    if n:  # one arm has no ratio to test: every unit is on it (1) or the plan is broken (0)
        p_value = fixed = 0.0 if outside else 1.0
        if not outside and len(shares) > 1:
            p_value = sequential_p(obs, list(shares.values()))
            fixed = float(chisquare(obs, exp).pvalue)
    per_variant = {}
    for v, share in shares.items():
        seen = observed.get(v, 0) / n if n else 0.0
        tol = 3.0 * (share * (1 - share) / n) ** 0.5 if n else None  # three standard errors
        per_variant[v] = {"observed": round(seen, 4), "planned": round(share, 4),
                          "tolerance": None if tol is None else round(tol, 4),
                          "within": tol is not None and abs(seen - share) <= tol}
    deviation = max((abs(x["observed"] - x["planned"]) for x in per_variant.values()),
                    default=None) if n else None
    return {"n": n, "p_value": p_value, "fixed_horizon_p_value": fixed,
            "per_variant": per_variant, "outside_plan": outside,
            "max_deviation": deviation,
            "within_tolerance": outside == 0 and all(x["within"] for x in per_variant.values())}
