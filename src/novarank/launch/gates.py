"""Launch gates as data: each gate is a spec (what is measured, threshold, minimum samples,
severity) plus a measurement; the spec, not the measurement, decides the verdict.

Verdicts: GREEN, YELLOW (a warning-severity gate that missed, or a waiver), RED,
INCONCLUSIVE (too few samples, or the check could not run). Missing data is never green.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from enum import StrEnum
from typing import Any


class Verdict(StrEnum):
    GREEN = "GREEN"
    YELLOW = "YELLOW"
    RED = "RED"
    INCONCLUSIVE = "INCONCLUSIVE"


@dataclass(frozen=True)
class GateSpec:
    number: int
    name: str
    metric: str
    op: str  # "==", ">=", "<=", ">", "<"
    threshold: float
    min_samples: int = 1
    severity: str = "blocker"  # blocker -> RED on a miss; warning -> YELLOW on a miss
    how: str = ""
    window: str = "at the check"  # what span of time or traffic the measurement covers
    # a check (not an estimate): one orphan, one tampered file or an empty table is a
    # defect whatever the count, so a miss is final below min_samples; a pass never is
    conclusive_miss: bool = False

    def judge(self, value: float | None, samples: int) -> Verdict:
        if value is None:
            return Verdict.INCONCLUSIVE
        ok = {"==": value == self.threshold, ">=": value >= self.threshold,
              "<=": value <= self.threshold, ">": value > self.threshold,
              "<": value < self.threshold}[self.op]
        if samples < self.min_samples and (ok or not self.conclusive_miss):
            return Verdict.INCONCLUSIVE
        if ok:
            return Verdict.GREEN
        return Verdict.YELLOW if self.severity == "warning" else Verdict.RED


@dataclass
class Measurement:
    value: float | None
    samples: int
    details: dict[str, Any] = field(default_factory=dict)
    evidence: Any = None  # a short, redacted JSON snippet for the pack
    note: str = ""  # what fell short, in words (the go/no-go record quotes it)


@dataclass
class GateResult:
    number: int
    name: str
    verdict: Verdict
    metric: str
    objective: str
    value: float | None
    samples: int
    min_samples: int
    how: str
    details: dict[str, Any]
    evidence: Any
    seconds: float
    code_version: str
    release: str
    waiver: str | None = None
    note: str = ""
    window: str = ""

    def to_dict(self) -> dict[str, Any]:
        return {**asdict(self), "verdict": self.verdict.value}


def evaluate(spec: GateSpec, measure: Callable[[], Measurement], *, code_version: str,
             release: str) -> GateResult:
    """Run one measurement and judge it; an exception is an INCONCLUSIVE gate, never green."""
    t0 = time.perf_counter()
    try:
        m = measure()
        verdict = spec.judge(m.value, m.samples)
    except Exception as exc:
        m = Measurement(None, 0, {"error": f"{type(exc).__name__}: {exc}"},
                        note=f"the measurement failed: {type(exc).__name__}: {exc}")
        verdict = Verdict.INCONCLUSIVE
    note = m.note
    if not note and m.samples < spec.min_samples:
        note = f"{m.samples} samples, {spec.min_samples} needed"
    return GateResult(spec.number, spec.name, verdict, spec.metric,
                      f"{spec.op} {spec.threshold:g}", m.value, m.samples, spec.min_samples,
                      spec.how, m.details, m.evidence, round(time.perf_counter() - t0, 3),
                      code_version, release, note=note, window=spec.window)


def decide(results: list[GateResult], waivers: dict[int, str] | None = None) -> dict[str, Any]:
    """The decision: GO only when every gate is GREEN, or YELLOW with a recorded waiver."""
    waivers = waivers or {}
    blocking = []
    for r in results:
        if r.verdict == Verdict.YELLOW and r.number in waivers:
            r.waiver = waivers[r.number]
            continue
        if r.verdict != Verdict.GREEN:
            blocking.append({"gate": r.number, "name": r.name, "verdict": r.verdict.value,
                             "why": r.note or f"measured {r.value}, objective {r.objective}"})
    return {"decision": "GO" if not blocking else "NO-GO", "blocking": blocking}
