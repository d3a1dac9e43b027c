"""The always-valid rate test holds its false-positive rate however often it is read, and
still finds a real harm; a fixed-horizon z-test read as often does not hold it. Seeded
and vectorised: 2,000 A/A rollouts of 100 looks each take a fraction of a second."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import stats

from novarank.analytics.sequential import greater_p, rate_difference

RUNS, LOOKS, PER_LOOK, ALPHA = 2_000, 100, 500, 0.05


def _looks(base: float, lift: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """(estimate, variance) of canary - stable at each look of each simulated rollout."""
    rng = np.random.default_rng(seed)
    canary = np.cumsum(rng.binomial(PER_LOOK, base + lift, (RUNS, LOOKS)), axis=1)
    stable = np.cumsum(rng.binomial(PER_LOOK, base, (RUNS, LOOKS)), axis=1)
    n = PER_LOOK * np.arange(1, LOOKS + 1)
    return rate_difference(canary, n, stable, n)


def _upper(rate: float, n: int = RUNS) -> float:
    """Wilson 95% upper bound of a rate seen over n runs."""
    z = 1.96
    centre = rate + z * z / (2 * n)
    return (centre + z * np.sqrt(rate * (1 - rate) / n + z * z / (4 * n * n))) / (1 + z * z / n)


@pytest.mark.parametrize("base,seed", [(0.10, 1), (0.01, 2)])
def test_a_a_false_alarms_stay_within_alpha_at_every_look(base, seed):
    est, var = _looks(base, 0.0, seed)
    sequential = (greater_p(est, var, 0.01) < ALPHA).any(axis=1).mean()
    peeking_z = (stats.norm.sf(est / np.sqrt(var)) < ALPHA).any(axis=1).mean()
    assert sequential <= ALPHA  # the claim, on 2,000 rollouts
    assert _upper(float(sequential)) < 2 * ALPHA
    assert peeking_z > 0.2  # the same check fails for the test it replaces


def test_a_real_harm_is_caught_and_early():
    est, var = _looks(0.01, 0.005, 3)  # error rate +0.5 pp on a base of 1%
    flagged = greater_p(est, var, 0.01) < ALPHA
    assert flagged.any(axis=1).mean() > 0.95
    first = flagged.argmax(axis=1)[flagged.any(axis=1)]
    assert np.median(first) < LOOKS / 2  # typically well before the step ends


def test_no_difference_and_the_other_side_give_no_evidence():
    assert greater_p(0.0, 1e-4, 0.01) == 1.0
    assert greater_p(-0.05, 1e-4, 0.01) == 1.0
    assert greater_p(0.05, 0.0, 0.01) == 0.0  # no variance, a difference: certain


def test_the_sequential_split_test_holds_alpha_and_catches_a_broken_split():
    """Users arrive 50 per look on a 10% canary; the split is read at every look."""
    from novarank.analytics.srm import sequential_p

    rng = np.random.default_rng(4)
    looks = 5 * np.arange(1, 21) * 50  # read every 250 users up to 5,000

    def alarms(share: float) -> float:
        canary = np.cumsum(rng.binomial(50, share, (400, 100)), axis=1)[:, 4::5]
        return float(np.mean([any(sequential_p([c, n - c], [10, 90]) < ALPHA
                                  for c, n in zip(row, looks, strict=True)) for row in canary]))

    assert alarms(0.10) <= ALPHA  # fair: within alpha over 20 looks
    assert alarms(0.13) > 0.9  # 13% of users on a 10% canary: found


def _latency_alarms(change: float, seed: int, runs: int = 300, looks: int = 30,
                    per_look: int = 20) -> np.ndarray:
    """Per run, whether latency_greater_p ever fell below ALPHA, read at every look of
    log-normal feed latencies (median 5 ms), the canary `change` slower."""
    from novarank.analytics.sequential import latency_greater_p

    rng = np.random.default_rng(seed)
    shape = (runs, looks * per_look)
    stable = 5.0 * rng.lognormal(0.0, 0.6, shape)
    canary = 5.0 * (1 + change) * rng.lognormal(0.0, 0.6, shape)
    return np.array([any(latency_greater_p(c[:e], s[:e]) < ALPHA
                         for e in range(per_look, looks * per_look + 1, per_look))
                     for c, s in zip(canary, stable, strict=True)])


def test_the_latency_test_holds_alpha_at_every_look_and_catches_a_slower_release():
    aa = _latency_alarms(0.0, 5)
    assert _upper(float(aa.mean()), len(aa)) < 2 * ALPHA and aa.mean() <= ALPHA
    assert _latency_alarms(0.2, 6, runs=100).mean() > 0.9  # 20% slower: found


def test_latency_evidence_is_one_sided_and_ignores_zero_readings():
    from novarank.analytics.sequential import latency_greater_p

    rng = np.random.default_rng(7)
    fast, slow = rng.lognormal(1.0, 0.5, 400), 2 * rng.lognormal(1.0, 0.5, 400)
    assert latency_greater_p(slow, fast) < 1e-6
    assert latency_greater_p(fast, slow) == 1.0
    with_zeros = np.r_[fast, np.zeros(5)]  # a 0 ms reading (clock resolution) is finite
    assert 0.0 <= latency_greater_p(with_zeros, fast) <= 1.0


def test_the_confidence_sequence_covers_the_true_difference_at_every_look_at_once():
    """2,000 experiments read 100 times each: the 95% sequence misses the true lift at
    any look in at most 5% of them (a fixed 95% interval read as often misses far more)."""
    from novarank.analytics.sequential import confidence_radius

    rng = np.random.default_rng(9)
    lift = 0.01
    a = np.cumsum(rng.binomial(PER_LOOK, 0.10 + lift, (RUNS, LOOKS)), axis=1)
    b = np.cumsum(rng.binomial(PER_LOOK, 0.10, (RUNS, LOOKS)), axis=1)
    n = PER_LOOK * np.arange(1, LOOKS + 1)
    est, var = rate_difference(a, n, b, n)
    radius = np.vectorize(confidence_radius)(var, 0.01, ALPHA)
    missed = (np.abs(est - lift) > radius).any(axis=1).mean()
    fixed = (np.abs(est - lift) > 1.96 * np.sqrt(var)).any(axis=1).mean()
    assert missed <= ALPHA and fixed > 0.2


def test_the_outcomes_tile_judges_each_variant_against_control_with_the_same_engine():
    from novarank.analytics.tiles import experiment_rows

    def group(variant: str, impressions: int, clicks: int) -> dict:
        return {"level": "group", "variant": variant, "release": "r1",
                "impressions": impressions, "clicks": clicks}

    rows = experiment_rows([group("control", 50_000, 5_000), group("bold", 50_000, 6_000),
                            group("same", 50_000, 5_010), group("empty", 0, 0),
                            {"level": "all", "variant": None, "release": None,
                             "impressions": 150_000, "clicks": 16_010}],
                           {"control": 50, "bold": 25, "same": 25})
    by = {r["metric"]: r for r in rows}
    assert set(by) == {"ctr_lift_bold", "ctr_lift_same", "ctr_lift_empty"}
    bold, same = by["ctr_lift_bold"], by["ctr_lift_same"]
    assert bold["value"] == pytest.approx(0.2) and bold["p_value"] < 1e-6
    assert bold["interval"][0] > 0 and same["interval"][0] < 0 < same["interval"][1]
    assert same["p_value"] > 0.5 and by["ctr_lift_empty"]["value"] is None
    assert {r["status"] for r in rows} == {"info"}  # a losing variant is a finding


def test_the_confidence_sequence_is_growthbooks_sequential_interval():
    """GrowthBook's sequential t-test (gbstats 0.8.0, SequentialTwoSidedTTest; eq 9 of
    Waudby-Smith et al. 2023) in its own parameters: N users, per-user variance s², the
    tuning parameter N* setting rho. With τ² = s² rho² our normal-mixture radius is the same
    interval (gbstats itself pins numpy<2 and pandas<2, so it is reproduced here, not
    imported)."""
    from novarank.analytics.sequential import confidence_radius

    rng = np.random.default_rng(11)
    for _ in range(200):
        n, s2, tuning = rng.integers(100, 10**6), rng.uniform(0.01, 4.0), rng.uniform(1e2, 1e5)
        alpha = rng.choice([0.01, 0.05, 0.1])
        rho2 = (-2 * np.log(alpha) + np.log(-2 * np.log(alpha) + 1)) / tuning
        growthbook = np.sqrt(s2) * np.sqrt(2 * (n * rho2 + 1) * np.log(np.sqrt(n * rho2 + 1)
                                                                           / alpha)
                                           / (n * n * rho2))
        ours = confidence_radius(s2 / n, float(np.sqrt(s2 * rho2)), alpha)
        assert ours == pytest.approx(growthbook, rel=1e-9)
