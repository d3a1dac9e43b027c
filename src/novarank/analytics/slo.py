"""Service-level objectives: one spec read by the tiles (and later the alerts and gates)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from novarank.analytics.srm import SRM_ALPHA


@dataclass(frozen=True)
class Objective:
    name: str
    metric: str
    op: Literal["<=", ">=", "<", ">"]
    threshold: float
    unit: str = ""
    min_samples: int = 1

    def holds(self, value: float) -> bool:
        return {"<=": value <= self.threshold, ">=": value >= self.threshold,
                "<": value < self.threshold, ">": value > self.threshold}[self.op]


HEALTH = (
    Objective("Latency p95 (feed)", "p95_ms", "<", 50.0, "ms", min_samples=20),
    Objective("Coverage (slots filled)", "coverage", ">", 0.95, "", min_samples=20),
    Objective("Error rate", "error_rate", "<", 0.001, "", min_samples=100),
    Objective("Cache hit rate (feed)", "cache_hit_rate", ">", 0.85, "", min_samples=20),
)
OUTCOMES = (
    Objective("CTR proxy", "ctr", ">", 0.01, "", min_samples=100),
    # a sample-ratio test, not a fixed share tolerance (analytics/srm.py says why)
    Objective("Traffic allocation (SRM p-value)", "allocation_srm_p", ">=", SRM_ALPHA, "",
              min_samples=100),
)
# judged on the release's held-out evaluation (analytics/quality.py): relative objectives that
# mean the same on every data set, and an absolute floor each data set sets (0 by default)
QUALITY = (
    Objective("Recall@10 (held-out) above the data set's floor", "recall", ">", 0.0, "",
              min_samples=100),
    Objective("Recall@10 lift over popularity (95% CI low)", "recall_lift_low", ">", 0.0, "",
              min_samples=100),
    Objective("Recall@10 vs the stable release", "recall_vs_stable", ">=", -0.01, "",
              min_samples=100),
)
