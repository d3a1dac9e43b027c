"""The benchmarks' verdicts can fail: each is fed a result that misses its target."""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "bench"))

import bench_abuse


def _phase(p99: float, errors: int = 0) -> dict:
    return {"victim_p99_ms": {"median": p99}, "victim_errors": errors}


def test_the_abuse_verdict_fails_on_a_slow_or_failing_victim():
    ok = {"quiet": _phase(3), "upserts_budgeted": _phase(9), "misses_budgeted": _phase(9.9),
          "upserts_unbudgeted": _phase(50), "misses_unbudgeted": _phase(50)}
    assert all(bench_abuse.verdict(ok, 10.0).values())  # the unbudgeted floods are not judged
    slow = {**ok, "misses_budgeted": _phase(10.1)}
    assert bench_abuse.verdict(slow, 10.0) == {"quiet": True, "upserts_budgeted": True,
                                               "misses_budgeted": False}
    erring = {**ok, "upserts_budgeted": _phase(2, errors=1)}
    assert not bench_abuse.verdict(erring, 10.0)["upserts_budgeted"]
