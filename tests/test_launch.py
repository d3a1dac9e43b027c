"""The baseline's schedule, percentile maths, verdicts, simulator, and one real short run."""

from __future__ import annotations

import asyncio

import numpy as np
import pytest
from hdrh.histogram import HdrHistogram

from novarank.launch.baseline import (
    TARGETS,
    BaselineRun,
    Interval,
    aggregate,
    judge,
    parse_metrics,
    windows,
)
from novarank.launch.schedule import HOUR, PHASES, Schedule, parse_duration
from novarank.launch.simulator import Simulator


def test_schedule_is_a_pure_function_of_simulated_time():
    real = Schedule(speedup=1, peak_rps=100)
    fast = Schedule(speedup=288, peak_rps=100)
    for t in np.linspace(0, 24 * HOUR - 1, 200):
        assert real.level(t) == fast.level(t)
        assert 0.0 < real.level(t) <= 1.0
    assert fast.wall_s == pytest.approx(300.0)
    assert [real.phase_at(h * HOUR).name for h in (0, 1.9, 2, 7.9, 8, 15.9, 16, 23.9)] == [
        PHASES[0].name, PHASES[0].name, PHASES[1].name, PHASES[1].name, PHASES[2].name,
        PHASES[2].name, PHASES[3].name, PHASES[3].name]
    ramp = [real.level(h * HOUR) for h in (0, 0.5, 1.0, 1.5)]
    assert ramp == sorted(ramp) and ramp[0] < ramp[-1]  # warm-up ramps up
    assert real.level(12 * HOUR) == pytest.approx(1.0)  # peak in the middle of phase 3
    assert real.level(5 * HOUR) == pytest.approx(real.steady_level)


def test_arrivals_follow_the_rate_curve():
    s = Schedule(duration_s=24 * HOUR, speedup=1440, peak_rps=200)  # 60 s of wall clock
    arr = s.arrivals()
    assert np.all(np.diff(arr) >= 0) and arr[0] >= 0 and arr[-1] <= s.wall_s
    grid = np.linspace(0, s.wall_s, 6001)
    expected = np.trapezoid([s.rate_at_wall(w) for w in grid], grid)
    assert len(arr) == pytest.approx(expected, rel=0.01)
    peak_window = ((arr >= 11 / 24 * 60) & (arr < 13 / 24 * 60)).sum() / 5.0
    steady_window = ((arr >= 4 / 24 * 60) & (arr < 6 / 24 * 60)).sum() / 5.0
    assert peak_window / steady_window == pytest.approx(1 / s.steady_level, rel=0.1)


def test_parse_duration():
    assert parse_duration("24h") == 86_400 and parse_duration("90m") == 5_400
    assert parse_duration("300s") == parse_duration("300") == 300
    with pytest.raises(ValueError, match="24h"):
        parse_duration("a day")


def test_percentiles_match_a_known_distribution():
    rng = np.random.default_rng(0)
    values = rng.exponential(20_000, 100_000).astype(int) + 1  # microseconds
    iv_a, iv_b = Interval(0, 0, "steady state"), Interval(1, HOUR, "steady state")
    for n, v in enumerate(values):
        (iv_a if n % 2 else iv_b).record(int(v), "l1", True, False)
    run = BaselineRun(Schedule(), [iv_a, iv_b], 0, len(values), 0, 0, 0.0, 1.0)
    merged = aggregate(run, [0, 1])
    for q, key in ((95, "hit_p95_ms"),):
        exact = np.percentile(values, q) / 1000
        assert merged[key] == pytest.approx(exact, rel=0.002)  # 3 significant digits
    h = HdrHistogram(1, 120_000_000, 3)
    for v in values:
        h.record_value(int(v))
    assert merged["hit_p95_ms"] == h.get_value_at_percentile(95) / 1000


def test_too_few_samples_is_inconclusive_never_pass():
    hit = next(t for t in TARGETS if t.metric == "hit_p95_ms")
    errors = next(t for t in TARGETS if t.metric == "error_rate")
    assert judge({"hit_p95_ms": 1.0, "hits": 10}, hit)["verdict"] == "inconclusive"
    assert judge({"hit_p95_ms": None, "hits": 0}, hit)["verdict"] == "inconclusive"
    assert judge({"hit_p95_ms": 1.0, "hits": 500}, hit)["verdict"] == "pass"
    assert judge({"hit_p95_ms": 150.0, "hits": 500}, hit)["verdict"] == "fail"
    # zero errors out of 300 requests cannot show an error rate below 0.1%
    assert judge({"error_rate": 0.0, "requests": 300}, errors)["verdict"] == "inconclusive"


def test_restarts_are_counted_from_process_start_times():
    ivs = [Interval(i, i * HOUR, "steady state") for i in range(3)]
    for iv, start in zip(ivs, (100.0, 100.0, 250.0), strict=True):
        iv.server["process_start"] = start
    run = BaselineRun(Schedule(), ivs, 0, 0, 0, 0, 0.0, 1.0)
    assert aggregate(run, [0, 1, 2])["restarts"] == 1
    assert windows(run)["after warm-up (phases 2-4)"] == [0, 1, 2]


def test_metrics_text_parsing():
    text = ("# HELP x\nprocess_resident_memory_bytes 1.5e+08\n"
            'novarank_requests_total{route="/x",status="200"} 3.0\nup 1\n'
            'novarank_requests_total{route="/y",status="500"} 2\n')
    assert parse_metrics(text) == {"process_resident_memory_bytes": 1.5e8, "up": 1.0,
                                   "novarank_requests_total": 5.0}


def test_simulator_cohorts_and_truthful_clicks(synth):
    ds, truth = synth.dataset, synth.truth
    sizes = ds.history_sizes()
    sim = Simulator(truth, ds.items.ids.tolist(), ds.user_ids.tolist(), sizes,
                    {"cold": 0.5, "heavy": 0.0, "light": 0.25, "medium": 0.25}, seed=1)
    users = [sim.pick_user() for _ in range(2000)]
    share = {c: sum(u.cohort == c for u in users) / len(users) for c in ("cold", "light")}
    assert share["cold"] == pytest.approx(0.5, abs=0.04)
    assert share["light"] == pytest.approx(0.25, abs=0.04)
    assert len({u.user_id for u in users if u.cohort == "cold"}) == sum(
        u.cohort == "cold" for u in users)  # every cold user is new
    user = next(u for u in users if u.cohort != "cold")
    probs = sim.click_probs(user, ds.items.ids.tolist())
    best, worst = ds.items.ids[int(probs.argmax())], ds.items.ids[int(probs.argmin())]
    clicks = {best: 0, worst: 0}
    for _ in range(400):
        for ev in sim.react(user, [best, worst], "r"):
            if ev["type"] == "click":
                clicks[ev["item_id"]] += 1
    assert clicks[best] > clicks[worst]
    item_id, _ = sim.new_upload(1_800_000_000)
    assert item_id in sim.uploads and sim.click_probs(user, [item_id])[0] > 0


def test_who_arrives_depends_on_the_seed_not_on_what_users_did(synth):
    """The users of a run (and so its A/B allocation) are fixed by the seed: two simulators
    whose users saw different feeds still bring the same users in the same order."""
    ds = synth.dataset
    runs = []
    for shown in (ds.items.ids[:10].tolist(), ds.items.ids[-3:].tolist()):
        sim = Simulator(synth.truth, ds.items.ids.tolist(), ds.user_ids.tolist(),
                        ds.history_sizes(), seed=3)
        seen = []
        for _ in range(200):
            user = sim.pick_user()
            sim.react(user, shown, "r")
            seen.append(user.user_id)
        runs.append(seen)
    assert runs[0] == runs[1]


@pytest.mark.slow
def test_a_short_baseline_against_a_real_service(tmp_path):
    from novarank.cli.demo_service import TOKEN, free_port, start_server, stop_server
    from novarank.config import TrainConfig
    from novarank.data.synthetic import SyntheticConfig, generate
    from novarank.launch import baseline as bl
    from novarank.launch import report as rp
    from novarank.release import save_release
    from novarank.training import fit_model

    d = generate(SyntheticConfig(users=300, items=200, events=15_000, seed=2))
    save_release(fit_model(d.dataset, TrainConfig(als_iterations=2, als_factors=8, tune=False)),
                 tmp_path / "rel")
    proc = start_server(tmp_path / "rel", tmp_path, free_port())
    url = f"http://127.0.0.1:{proc.args[proc.args.index('--port') + 1]}"
    try:
        sched = Schedule(duration_s=24 * HOUR, speedup=24 * HOUR / 6, peak_rps=60)  # 6 s
        sim = Simulator(d.truth, d.dataset.items.ids.tolist(), d.dataset.user_ids.tolist(),
                        d.dataset.history_sizes(), seed=3)
        run = asyncio.run(bl.run(url, sched, sim, admin_token=TOKEN))
    finally:
        stop_server(proc)
    assert run.scheduled == len(sched.arrivals()) and run.events_posted > 0
    report = rp.build(run, {"url": url, "release": "r"})
    path = rp.write(report, tmp_path / "out")
    text = path.read_text()
    assert "Staging baseline report" in text and report["verdict"] in (
        "pass", "fail", "inconclusive")
    assert len(report["intervals"]) == 24
    assert sum(r["requests"] for r in report["intervals"]) == run.scheduled
    assert (tmp_path / "out" / "plots" / "latency.png").stat().st_size > 1000
    assert report["warm_plan"]["users"] == 300


def test_a_compressed_run_scales_the_service_clock_or_says_it_did_not():
    from novarank.launch.report import time_model_line

    assert Schedule(speedup=1).service_env() == {}
    env = Schedule(speedup=288).service_env()
    assert float(env["NOVARANK_FEED_TTL_S"]) == pytest.approx(300 / 288, rel=1e-4)
    assert float(env["NOVARANK_SNAPSHOT_TTL_S"]) == pytest.approx(1800 / 288, rel=1e-4)
    assert float(env["NOVARANK_TRENDING_REFRESH_S"]) == 0.2  # floored: a 2-core machine
    report = {"schedule": {"speedup": 288.0}, "meta": {"time_model": {"scaled": False}}}
    assert "valid only for real-time runs" in time_model_line(report)
    report["meta"]["time_model"] = {"scaled": True, "settings": env}
    assert "scaled with it" in time_model_line(report)


def test_baseline_plots_draw_the_guides_targets():
    from novarank.launch.report import target_lines

    assert target_lines({"hit_p95_ms", "miss_p95_ms", "p50_ms"}) == [
        (100.0, "target: api latency p95 (cache hit) <= 100"),
        (300.0, "target: api latency p95 (cache miss) <= 300")]
    assert target_lines({"cache_hit_rate"}) == [(0.95, "target: cache hit rate >= 0.95")]
    assert target_lines({"error_rate"})[0][0] == 0.001
    assert target_lines({"rss_mb"}) == []
