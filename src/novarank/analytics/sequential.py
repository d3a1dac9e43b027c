"""Always-valid tests for a canary that is judged at every tick.

A fixed-horizon test read again and again flags differences that are not there: a plain
z-test at 0.05 looked at 100 times calls about a third of A/A comparisons significant. The
mixture sequential probability ratio test (mSPRT) stays valid at every look. For an
estimate θ̂ of a difference, with variance V, the normal mixture N(0, τ²) over the
alternative gives the likelihood ratio

    Λ = sqrt(V / (V + τ²)) · exp(τ² θ̂² / (2 V (V + τ²)))

and P(Λ ever reaches 1/alpha under H0: θ = 0) ≤ alpha, whenever and however often it is read
(Robbins 1970; Johari, Koomen, Pekelis & Walsh, "Always valid inference", Operations
Research 2022). 1/Λ is an always-valid p-value; the θ where Λ = 1/alpha bound a confidence
sequence. τ is the scale of the effects the test finds fastest; any τ keeps it valid,
and so does an average of the ratios over several τ (a mixture of mixtures), which is
what is used here: a grid from half the guardrail's scale to 64 times it, densest near
the harms the margins name, so a drill's 50% error rate is caught on the first look and
a 0.5 pp rise soon after.
"""

from __future__ import annotations

import numpy as np
from numpy.typing import ArrayLike, NDArray
from scipy import stats

# the scale of a difference per guardrail (absolute rates; latency: the log of the ratio
# of geometric means, 0.05 = 5% slower); the test mixes over a grid of multiples
TAU = {"error_rate": 0.01, "ctr": 0.01, "latency": 0.05, "watched_fraction": 0.02}
LATENCY_FLOOR_MS = 0.01  # a logged 0 ms (clock resolution) is read as this
GRID = (0.5, 1.0, 2.0, 8.0, 64.0)  # multiples of τ, weighted equally: dense near τ


def _half_normal_log_lr(est: NDArray[np.float64], var: NDArray[np.float64], tau: float
                        ) -> NDArray[np.float64]:
    """log Λ₊ for one scale τ: the normal mixture's log Λ, plus log 2Φ(·)."""
    t2 = tau * tau
    return (0.5 * np.log(var / (var + t2)) + t2 * est * est / (2 * var * (var + t2))
            + np.log(2.0) + stats.norm.logcdf(est * tau / np.sqrt(var * (var + t2))))


def greater_p(estimate: ArrayLike, variance: ArrayLike, tau: float) -> NDArray[np.float64]:
    """One-sided always-valid p-value of "θ > 0" (vectorised). The mixture is over
    harmful differences only (a half-normal), which doubles Λ where θ̂ is clearly
    positive: Λ₊ = 2 Λ Φ(θ̂ τ / sqrt(V (V + τ²))), still a martingale at θ = 0 and a
    supermartingale for θ < 0, so valid for the whole one-sided null."""
    est, var = np.asarray(estimate, float), np.asarray(variance, float)
    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
        logs = np.stack([_half_normal_log_lr(est, var, tau * g) for g in GRID])
        top = logs.max(axis=0)
        log_lr = top + np.log(np.exp(logs - top).mean(axis=0))
    p = np.exp(-np.nan_to_num(log_lr, nan=0.0, posinf=np.inf))
    return np.where(var > 0, np.minimum(p, 1.0), np.where(est > 0, 0.0, 1.0))


def rate_difference(x1: ArrayLike, n1: ArrayLike, x2: ArrayLike, n2: ArrayLike
                    ) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
    """(rate 1 - rate 2, its variance) from counts (vectorised). Rates are smoothed by
    half an event so that zero counts on both sides still have a variance."""
    a1, b1 = np.asarray(x1, float), np.asarray(n1, float)
    a2, b2 = np.asarray(x2, float), np.asarray(n2, float)
    r1, r2 = (a1 + 0.5) / (b1 + 1), (a2 + 0.5) / (b2 + 1)
    return a1 / b1 - a2 / b2, r1 * (1 - r1) / b1 + r2 * (1 - r2) / b2


def rate_greater_p(x1: int, n1: int, x2: int, n2: int, tau: float) -> float:
    """Always-valid one-sided p-value of "rate 1 > rate 2" from two arms' counters."""
    est, var = rate_difference(x1, n1, x2, n2)
    return float(greater_p(est, var, tau))


def log_mean_difference(a: ArrayLike, b: ArrayLike) -> tuple[float, float]:
    """(mean log a - mean log b, its variance) of two samples of latencies: the log of the
    ratio of their geometric means. Latency is skewed; its log is close enough to normal
    for the mixture's normal likelihood, and a ratio is what a slower release changes."""
    la = np.log(np.maximum(np.asarray(a, float), LATENCY_FLOOR_MS))
    lb = np.log(np.maximum(np.asarray(b, float), LATENCY_FLOOR_MS))
    var = float(la.var(ddof=1) / len(la) + lb.var(ddof=1) / len(lb))
    return float(la.mean() - lb.mean()), var


def latency_greater_p(a: ArrayLike, b: ArrayLike, tau: float = TAU["latency"]) -> float:
    """Always-valid one-sided p-value of "sample a is slower than sample b" (on log
    latency). The variance is estimated from the samples, as in the sequential t-test of
    Waudby-Smith et al. that GrowthBook uses: valid as the samples grow, which the
    controller's minimum per arm sees to."""
    est, var = log_mean_difference(a, b)
    return float(greater_p(est, var, tau))


def two_sided_p(estimate: float, variance: float, tau: float) -> float:
    """Always-valid two-sided p-value of "the difference is not 0" (an experiment, where
    either direction is news): the two one-sided tests, each at half the level."""
    return float(min(1.0, 2 * min(greater_p(estimate, variance, tau),
                                  greater_p(-estimate, variance, tau))))


def rate_two_sided_p(x1: int, n1: int, x2: int, n2: int, tau: float) -> float:
    """`two_sided_p` of rate 1 - rate 2, from counts."""
    est, var = rate_difference(x1, n1, x2, n2)
    return two_sided_p(float(est), float(var), tau)


def confidence_radius(variance: float, tau: float, alpha: float) -> float:
    """Half-width of the always-valid (1 - alpha) confidence sequence of a difference
    whose estimate has `variance`: the θ where the two-sided normal mixture N(0, τ²)
    reaches 1/alpha (Howard, Ramdas, McAuliffe & Sekhon 2021; Johari et al. 2022). It
    covers the true difference at every look at once, so it may be read at any time. It
    is GrowthBook's sequential interval with ρ² = τ² / s² (tests/test_sequential.py)."""
    v, t2 = variance, tau * tau
    return float(np.sqrt(v * (v + t2) / t2 * (np.log((v + t2) / v) + 2 * np.log(1 / alpha))))


def mean_difference(a: ArrayLike, b: ArrayLike) -> tuple[float, float]:
    """(mean a - mean b, its variance), for a mean per event such as a watched fraction."""
    x, y = np.asarray(a, float), np.asarray(b, float)
    return float(x.mean() - y.mean()), float(x.var(ddof=1) / len(x) + y.var(ddof=1) / len(y))
