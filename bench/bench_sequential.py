"""False rollbacks and detection of the canary's rate tests, old judge against new, on the
same simulated traffic.

Each simulated rollout step looks `--looks` times (500 users per arm per look, as the
controller re-reads the lake every tick). The old judge is the controller's rule before
the sequential engine: a one-sided two-proportion z-test at `early_alpha` on every look
and at `alpha` on the last. The new judge reads the always-valid p-value
(launch/sequential.py) at `sequential_alpha` (0.05, the whole step's false-rollback
budget) on every look; "new at 0.01" is the same at the fixed-horizon `alpha`.
"Peeking z" is a plain z-test at 0.05 read at every look. The evidence is judged alone
here; the practical margins apply equally to both judges.

Run: .venv/bin/python bench/bench_sequential.py [--runs 2000 --looks 100]
"""

from __future__ import annotations

import argparse

import numpy as np
from scipy import stats

from common import write
from novarank.launch.sequential import TAU, greater_p, rate_difference
from novarank.online.releases import RolloutPolicy

PER_LOOK = 500
SCENARIOS = {  # name -> (guardrail, base rate, canary's change; CTR falls = harm)
    "aa_error_rate": ("error_rate", 0.01, 0.0),
    "aa_ctr": ("ctr", 0.10, 0.0),
    "ab_error_rate_plus_0_5pp": ("error_rate", 0.01, 0.005),
    "ab_ctr_minus_10pct": ("ctr", 0.10, -0.01),
}


def wilson(k: int, n: int) -> list[float]:
    """The 95% Wilson interval of k successes in n."""
    z, p = 1.96, k / n
    centre, half = p + z * z / (2 * n), z * np.sqrt(p * (1 - p) / n + z * z / (4 * n * n))
    return [round(float((centre - half) / (1 + z * z / n)), 5),
            round(float((centre + half) / (1 + z * z / n)), 5)]


def simulate(guardrail: str, base: float, change: float, runs: int, looks: int,
             seed: int) -> dict[str, np.ndarray]:
    """Per judge, the first look (1-based) at which it rolls back, 0 for never."""
    rng = np.random.default_rng(seed)
    canary = np.cumsum(rng.binomial(PER_LOOK, base + change, (runs, looks)), axis=1)
    stable = np.cumsum(rng.binomial(PER_LOOK, base, (runs, looks)), axis=1)
    n = PER_LOOK * np.arange(1, looks + 1)
    harm = (canary, n, stable, n) if guardrail == "error_rate" else (stable, n, canary, n)
    est, var = rate_difference(*harm)
    z_p = stats.norm.sf(est / np.sqrt(var))
    seq_p = greater_p(est, var, TAU[guardrail])
    policy = RolloutPolicy()
    last = np.zeros(looks, bool)
    last[-1] = True

    def first(flagged: np.ndarray) -> np.ndarray:
        return np.where(flagged.any(axis=1), flagged.argmax(axis=1) + 1, 0)

    return {"peeking_z_0.05": first(z_p < 0.05),
            "old_judge": first((z_p < policy.early_alpha) | (last & (z_p < policy.alpha))),
            # always valid: the controller reads it at one level on every look
            "new_judge": first(seq_p < policy.sequential_alpha),
            "new_at_alpha_0.01": first(seq_p < policy.alpha)}


def summarise(first: np.ndarray) -> dict:
    caught = first[first > 0]
    return {"rollback_rate": round(float(len(caught) / len(first)), 5),
            "rollback_rate_ci95": wilson(len(caught), len(first)),
            "median_looks_to_rollback": float(np.median(caught)) if len(caught) else None,
            "median_users_per_arm_to_rollback": float(np.median(caught)) * PER_LOOK
            if len(caught) else None}


def verdict(out: dict, alpha: float = 0.05) -> dict[str, bool]:
    """A/A: the new judge's false rollbacks within alpha (the upper end of their 95%
    interval); A/B: it catches each harm as often as the old judge (within 2 points)."""
    ok = {}
    for name, r in out.items():
        new, old = r["new_judge"], r["old_judge"]
        if name.startswith("aa_"):
            ok[f"{name}_false_rollbacks_within_alpha"] = new["rollback_rate_ci95"][1] <= alpha
        else:
            ok[f"{name}_caught_as_often"] = new["rollback_rate"] >= old["rollback_rate"] - 0.02
    return ok


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--runs", type=int, default=2_000)
    ap.add_argument("--looks", type=int, default=100)
    args = ap.parse_args()
    out = {}
    for seed, (name, (guardrail, base, change)) in enumerate(SCENARIOS.items()):
        firsts = simulate(guardrail, base, change, args.runs, args.looks, seed)
        out[name] = {judge: summarise(f) for judge, f in firsts.items()}
    write("sequential", {"runs": args.runs, "looks": args.looks, "users_per_arm_per_look":
                         PER_LOOK, "scenarios": {k: {"guardrail": g, "base": b, "change": c}
                                                 for k, (g, b, c) in SCENARIOS.items()},
                         "policy": {"early_alpha": RolloutPolicy().early_alpha,
                                    "alpha": RolloutPolicy().alpha,
                                    "sequential_alpha": RolloutPolicy().sequential_alpha},
                         "results": out, "pass": verdict(out)})


if __name__ == "__main__":
    main()
