"""The benchmarks' verdicts can fail: each is fed a result that misses its target."""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "bench"))

import bench_abuse
import bench_interleaving
import bench_offpolicy
import bench_outage
import bench_soak
import bench_spark


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


def _outage(**change) -> dict:
    r = {"feeds": {"error_rate": 0.0, "p99_ms_during_outage": 11.0, "answered": 8000},
         "recovery": {"invalidation_s": 0.6},
         "likes": {"acknowledged": 800, "in_lake_raw": 800, "in_lake_distinct": 800},
         "telemetry": {"answered_feeds": 8000, "request_events_missing": 0}}
    for path, value in change.items():
        part, key = path.split("__")
        r[part] = {**r[part], key: value}
    return r


def test_the_outage_verdict_fails_for_each_of_its_own_reasons():
    assert all(bench_outage.verdict(_outage()).values())
    for change, failed in [({"feeds__error_rate": 0.002}, "error_rate"),
                           ({"feeds__p99_ms_during_outage": 101.0}, "p99_during_outage"),
                           ({"recovery__invalidation_s": None}, "invalidation_recovery"),
                           ({"recovery__invalidation_s": 2.5}, "invalidation_recovery"),
                           ({"likes__in_lake_raw": 801}, "likes_exactly_once"),
                           ({"likes__in_lake_distinct": 799}, "likes_exactly_once"),
                           ({"telemetry__request_events_missing": 3}, "requests_in_lake")]:
        v = bench_outage.verdict(_outage(**change))
        assert [k for k, ok in v.items() if not ok] == [failed], change


def _soak(rss: list[float], bound: float = 400.0, errors: int = 0) -> dict:
    return {"samples": [{"rss_mb": x} for x in rss], "bound_mb": bound,
            "feeds": {"errors": errors}}


def test_the_soak_verdict_fails_on_growth_a_breached_bound_or_errors():
    flat = [180, 240, 290, 300, 301, 302, 303, 302, 304]
    assert all(bench_soak.verdict(_soak(flat)).values())
    growing = [180, 200, 220, 240, 260, 280, 300, 320, 340]
    assert bench_soak.verdict(_soak(growing)) == {"levelled_off": False,
                                                  "within_bound": True, "no_errors": True}
    assert not bench_soak.verdict(_soak(flat, bound=300))["within_bound"]
    assert not bench_soak.verdict(_soak(flat, errors=1))["no_errors"]


def _version(capacity: float, hit_p99: float, miss_p95: float, errors: int = 0) -> dict:
    return {"capacity_rps": {"median": capacity}, "hit_p99_ms": {"median": hit_p99},
            "miss_p95_ms": {"median": miss_p95}, "errors": {"max": errors}}


def test_the_versions_verdict_fails_on_a_regression_beyond_noise():
    import bench_versions

    base = _version(5_000, 2.0, 10.0)
    assert all(bench_versions.verdict(base, _version(4_800, 2.4, 11.4)).values())  # noise
    assert not bench_versions.verdict(base, _version(4_700, 2.0, 10.0))["capacity"]
    assert not bench_versions.verdict(base, _version(5_000, 2.6, 10.0))["hit_p99"]
    assert not bench_versions.verdict(base, _version(5_000, 2.0, 11.6))["miss_p95"]
    assert not bench_versions.verdict(base, _version(5_000, 2.0, 10.0, errors=1))["no_errors"]


def test_the_floor_verdict_fails_below_the_ratio_or_above_the_p99():
    import bench_floor

    assert all(bench_floor.verdict(0.41, 2.9).values())
    assert bench_floor.verdict(0.39, 2.9) == {"capacity_ratio": False, "p99_at_1000rps": True}
    assert bench_floor.verdict(0.5, 3.1) == {"capacity_ratio": True, "p99_at_1000rps": False}


def _judges(new_rate: float, new_ci: tuple[float, float], old_rate: float) -> dict:
    return {"new_judge": {"rollback_rate": new_rate, "rollback_rate_ci95": list(new_ci)},
            "old_judge": {"rollback_rate": old_rate}}


def test_the_sequential_verdict_fails_on_false_rollbacks_or_lost_power():
    import bench_sequential

    ok = {"aa_x": _judges(0.01, (0.006, 0.014), 0.02), "ab_y": _judges(0.99, (0.98, 1), 1.0)}
    assert all(bench_sequential.verdict(ok).values())
    loose = {**ok, "aa_x": _judges(0.045, (0.036, 0.055), 0.02)}
    assert not bench_sequential.verdict(loose)["aa_x_false_rollbacks_within_alpha"]
    weak = {**ok, "ab_y": _judges(0.9, (0.88, 0.92), 1.0)}
    assert not bench_sequential.verdict(weak)["ab_y_caught"]


def test_the_peer_verdict_fails_below_the_peers_rate():
    import bench_peer

    assert bench_peer.verdict(1.0) == {"miss_vs_peer": True}
    assert bench_peer.verdict(0.99) == {"miss_vs_peer": False}


def test_the_peer_wrk_script_sends_each_user_in_turn(tmp_path):
    import bench_peer

    script = bench_peer.rotation(tmp_path, "s", "/v1/users/{u}/feed?k=10", ["a", "b"],
                                 {"Authorization": "Bearer t"}).read_text()
    assert 'local users = {"a", "b"}' in script and "n % #users + 1" in script
    assert '("/v1/users/{u}/feed?k=10"):gsub("{u}", users[n])' in script
    assert '["Authorization"] = "Bearer t"' in script


def test_the_spark_verdict_fails_when_spark_ranks_worse_or_a_run_failed():
    local = [{"events": 10, "recall": 0.30}, {"events": 100, "recall": 0.30}]
    spark = [{"events": 10, "recall": 0.295}, {"events": 100, "recall": 0.28}]
    assert bench_spark.verdict({"local": local, "spark": spark}) == {"10": True, "100": False}
    crashed = [{"events": 10, "recall": 0.30}, {"events": 100, "failed": "OutOfMemoryError"}]
    assert bench_spark.verdict({"local": local, "spark": crashed}) == {"10": True,
                                                                      "100": False}
    timed = [{"events": 1000, "fit_s": 9.0, "quality": False}]  # judged for time only
    assert bench_spark.verdict({"local": [*local, *timed], "spark": [*spark, *timed]}) == {
        "10": True, "100": False}


def test_the_offpolicy_verdict_fails_when_intervals_miss_the_truth():
    def row(cand: str, ips: bool, dr: bool) -> dict:
        return {"candidate": cand, "covered": {"ips": ips, "dr": dr}}
    rows = [row("better", True, True) for _ in range(9)] + [row("worse", False, True)]
    assert bench_offpolicy.verdict(rows) == {"dr": True, "ips": True}  # 9 of 10
    rows.append(row("equal", False, True))
    assert bench_offpolicy.verdict(rows) == {"dr": True, "ips": False}  # 9 of 11
    # a candidate without full support is not what the coverage target is about
    assert bench_offpolicy.verdict([*rows[:10], row("trending_only", False, False)]) == {
        "dr": True, "ips": True}
    assert bench_offpolicy.verdict([]) == {}


def test_the_interleaving_verdict_fails_when_it_is_not_faster_or_cries_wolf():
    def runs(median: float, detected: int = 20) -> dict:
        return {"median": median, "detected": detected, "runs": 20}

    def result(il: dict, ab: dict, right: bool = True, aa: int = 1) -> dict:
        cand = {"interleaving": il, "ab": ab, "right_way": right}
        return {"candidates": {c: cand for c in bench_interleaving.CANDIDATES},
                "aa": runs(0, detected=aa)}
    assert all(bench_interleaving.verdict(result(runs(400), runs(4000))).values())
    same = bench_interleaving.verdict(result(runs(100), runs(100)))
    assert same["relevance_only_found"] and not same["fewer_users_on_the_subtle_difference"]
    slower = bench_interleaving.verdict(result(runs(400), runs(300)))
    assert not slower["trending_only_found"]
    assert not bench_interleaving.verdict(result(runs(400, 19), runs(4000)))[
        "relevance_only_found"]  # a run that never found it
    assert not bench_interleaving.verdict(result(runs(400), runs(4000), right=False))[
        "trending_only_found"]  # found the wrong way round
    assert not bench_interleaving.verdict(result(runs(400), runs(4000), aa=3))["aa_quiet"]
