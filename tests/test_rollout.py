"""Progressive rollout: the step tests, sticky routing, and the controller driving a real
service (SQLite state, Parquet lake) to a promotion, a rollback, a pause."""

from __future__ import annotations

import shutil
import time

import numpy as np
import pytest
from fastapi.testclient import TestClient

from novarank.analytics.sequential import rate_greater_p
from novarank.api import create_app
from novarank.config import ServiceSettings, TrainConfig
from novarank.data.synthetic import SyntheticConfig, generate
from novarank.errors import ConfigError, ReleaseError
from novarank.launch.canary import Arm, compare
from novarank.launch.rollout import RolloutController
from novarank.online.releases import Fault, RolloutPolicy, on_canary, read_doc
from novarank.online.service import RankingService
from novarank.release import save_release
from novarank.stores import open_state
from novarank.stores.cache import RedisCache
from novarank.training import fit_model

TOKEN = "s3cret"
POLICY = dict(step_seconds=0.8, max_step_seconds=20, min_requests=40, min_impressions=0)


# ---- the tests of a step -------------------------------------------------------------------
def _arm(hits=(), misses=(), errors=0, impressions=0, clicks=0) -> Arm:
    return Arm(latency_ms={"hit": np.asarray(hits, float), "miss": np.asarray(misses, float)},
               requests=len(hits) + len(misses), errors=errors, impressions=impressions,
               clicks=clicks)


def test_the_always_valid_rate_test():
    assert rate_greater_p(30, 100, 5, 100, 0.01) < 1e-3
    assert rate_greater_p(10, 100, 10, 100, 0.01) == 1.0  # no difference: no evidence
    assert rate_greater_p(5, 100, 30, 100, 0.01) == 1.0  # the other side: one-sided
    assert rate_greater_p(0, 100, 0, 100, 0.01) == 1.0


def test_step_fails_on_errors_latency_and_ctr_for_the_right_reason():
    rng = np.random.default_rng(0)
    fast, slow = rng.gamma(4, 1.0, 400), rng.gamma(4, 2.5, 400)
    p = RolloutPolicy(min_requests=200, min_impressions=500)
    good = _arm(fast, rng.gamma(4, 1.0, 100), impressions=2000, clicks=200)

    def failing(arm: Arm) -> list[str]:
        return [c.metric for c in compare(arm, good, p).failing()]

    assert compare(_arm(rng.gamma(4, 1.0, 400), rng.gamma(4, 1.0, 100), impressions=2000,
                        clicks=190), good, p).verdict == "pass"
    # 40% slower but only ~1 ms: significant, and still no harm worth a rollback
    assert compare(_arm(rng.gamma(4, 0.7, 400), rng.gamma(4, 1.0, 100)), _arm(
        rng.gamma(4, 0.5, 400), rng.gamma(4, 1.0, 100)), RolloutPolicy(
            min_requests=200, min_impressions=0)).verdict == "pass"
    assert failing(_arm(fast, errors=40, impressions=2000, clicks=200)) == ["error_rate"]
    assert failing(_arm(slow, impressions=2000, clicks=200)) == ["latency_hit"]
    assert failing(_arm(fast, impressions=2000, clicks=100)) == ["ctr"]


def test_step_waits_for_samples_and_compares_like_with_like():
    p = RolloutPolicy(min_requests=200, min_impressions=0)
    rng = np.random.default_rng(1)
    stable = _arm(rng.gamma(4, 0.25, 2000), rng.gamma(4, 1.0, 200))
    few = compare(_arm(rng.gamma(4, 0.25, 15)), stable, p)
    assert few.verdict == "no_data" and [c.metric for c in few.missing()] == ["error_rate",
                                                                               "latency_hit"]
    # a new release's cold cache: many misses, but each level is as fast as stable's
    cold = _arm(rng.gamma(4, 0.25, 100), rng.gamma(4, 1.0, 300))
    assert compare(cold, stable, p).verdict == "pass"
    # CTR is required when min_impressions > 0
    assert compare(cold, stable, RolloutPolicy(min_requests=200, min_impressions=10)
                   ).verdict == "no_data"


def test_the_users_split_is_judged_against_the_canary_share():
    p = RolloutPolicy(min_requests=200, min_impressions=0)
    rng = np.random.default_rng(2)
    canary, stable = _arm(rng.gamma(4, 1.0, 300)), _arm(rng.gamma(4, 1.0, 2700))
    canary.users, stable.users = 96, 904  # a fair 10% split
    fair = compare(canary, stable, p, 10)
    assert fair.verdict == "pass" and fair.checks[-1].metric == "sample_ratio"
    canary.users = 160  # 15% of users on a 10% canary: the split is broken
    broken = compare(canary, stable, p, 10)
    assert [c.metric for c in broken.failing()] == ["sample_ratio"]
    assert compare(canary, stable, p).verdict == "pass"  # no share: not checked


def test_a_broken_split_halts_the_rollout_instead_of_rolling_back(world, monkeypatch):
    from novarank.launch import rollout

    _, _, ctl, rel = world
    ctl.start(rel["v2"], [10, 100], RolloutPolicy(step_seconds=60, min_requests=200,
                                                   min_impressions=0), stable=rel["v1"])
    rng = np.random.default_rng(3)

    def skewed(lake, canary, stable, since, until):
        arms = {canary: _arm(rng.gamma(4, 1.0, 400)), stable: _arm(rng.gamma(4, 1.0, 600))}
        arms[canary].users, arms[stable].users = 400, 600  # 40% of users on a 10% canary
        return arms

    monkeypatch.setattr(rollout, "lake_samples", skewed)
    doc = ctl.tick()
    assert doc.status == "paused" and doc.reason.startswith("sample ratio mismatch")
    assert doc.history[-1]["event"] == "pause"


def test_a_step_shows_its_harms_bounded_before_it_may_move_on(world, monkeypatch):
    """promotion=non_inferior: with no evidence of harm but too few samples to bound it
    inside the margins, the step waits, then pauses naming what is not shown; with enough
    samples the same canary steps up. no_harm (the default) moves on either way."""
    from novarank.launch import rollout

    settings, _, _, rel = world
    now = [1_000.0]
    ctl = RolloutController(open_state(settings.state_url), settings.release.parent,
                            clock=lambda: now[0])
    rng = np.random.default_rng(10)
    size = [300]

    def alike(lake, canary, stable, since, until):
        return {canary: _arm(rng.gamma(4, 1.0, size[0]), impressions=50 * size[0],
                             clicks=5 * size[0]),
                stable: _arm(rng.gamma(4, 1.0, size[0]), impressions=50 * size[0],
                             clicks=5 * size[0])}

    monkeypatch.setattr(rollout, "lake_samples", alike)
    policy = RolloutPolicy(step_seconds=60, max_step_seconds=120, min_requests=200,
                           min_impressions=1000, promotion="non_inferior")
    ctl.start(rel["v2"], [10, 50, 100], policy, stable=rel["v1"])
    analysis = compare(*alike(None, "a", "b", 0, 0).values(), policy)
    assert analysis.verdict == "pass"
    assert {c.metric for c in analysis.checks if c.non_inferior is False} >= {"ctr"}
    now[0] += 61
    assert ctl.tick().percent == 10  # passing, not yet shown non-inferior: waits
    now[0] += 60
    doc = ctl.tick()
    assert doc.status == "paused" and doc.reason.startswith("not shown non-inferior: ")
    assert "ctr could still be" in doc.reason
    ctl.resume()
    size[0] = 200_000  # the same canary, measured well enough to bound every harm
    now[0] += 61
    doc = ctl.tick()
    assert doc.status == "running" and doc.percent == 50
    assert all(c["non_inferior"] for c in doc.history[-1]["analysis"]["checks"]
               if c["non_inferior"] is not None)


def test_canary_share_is_sticky():
    users = [f"user{i}" for i in range(20_000)]
    shares = {pct: {u for u in users if on_canary("salt", u, pct)} for pct in (10, 25, 50)}
    assert shares[10] <= shares[25] <= shares[50]
    for pct, chosen in shares.items():
        assert abs(len(chosen) / len(users) - pct / 100) < 0.015


def test_fault_parsing():
    assert Fault.parse("errors:0.5").rate == 0.5
    assert Fault.parse("latency:200").ms == 200
    with pytest.raises(ConfigError, match="fault"):
        Fault.parse("explode")


# ---- the controller on a real service ------------------------------------------------------
@pytest.fixture(scope="module")
def releases(tmp_path_factory):
    d = generate(SyntheticConfig(users=300, items=250, creators=30, events=20_000, seed=5))
    root = tmp_path_factory.mktemp("rollout")
    out = {}
    for version, factors in (("v1", 8), ("v2", 12)):
        model = fit_model(d.dataset, TrainConfig(als_iterations=3, als_factors=factors,
                                                 tune=False))
        save_release(model, root / version, version=version)
        out[version] = root / version
    out["users"] = [str(u) for u in d.dataset.user_ids[:300]]
    return out


@pytest.fixture()
def world(releases, tmp_path):
    settings = ServiceSettings(release=releases["v1"], state_url=f"sqlite:///{tmp_path}/s.db",
                               events_url=f"file://{tmp_path}/lake", admin_token=TOKEN,
                               refresh_s=0.1,
                               # the rollout, not the budgets: the drive runs as fast as it
                               # can, and a 429 past the miss budget is no canary failure
                               # (tests/test_security.py tests the budgets)
                               rate_limits={"catalog": 0, "events": 0, "miss": 0})
    state = open_state(settings.state_url)
    with TestClient(create_app(settings)) as client:
        yield settings, client, RolloutController(state, tmp_path / "lake"), releases
    state.close()


def _drive(client, users, seconds: float, log: list) -> None:
    """Feeds for every user in turn, with an impression and a click each; every answer
    (status, release, time) goes to `log`."""
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        for u in users:
            r = client.get(f"/v1/users/{u}/feed", params={"k": 5})
            body = r.json()
            release = body.get("release") or body.get("error", {}).get("release")
            log.append((time.time(), u, r.status_code, release))
            if r.status_code == 200:
                item = body["items"][0]["item_id"]
                client.post("/v1/events", json=[
                    {"type": "impression", "user_id": u, "item_id": item,
                     "request_id": body["request_id"], "position": 0},
                    {"type": "click", "user_id": u, "item_id": item,
                     "request_id": body["request_id"], "position": 0}])


def _until(ctl, client, users, log, done, timeout=40.0):
    t0 = time.monotonic()
    while time.monotonic() - t0 < timeout:
        _drive(client, users, 0.4, log)
        doc = ctl.tick()
        if done(doc):
            return doc
    raise AssertionError(f"rollout still {ctl.current().status} after {timeout} s")


def test_healthy_canary_is_promoted_without_a_failed_request(world):
    settings, client, ctl, rel = world
    users = rel["users"][:60]
    doc = ctl.start(rel["v2"], [20, 50, 100], RolloutPolicy(**POLICY), stable=rel["v1"])
    assert doc.status == "running" and doc.percent == 20
    log: list = []
    on_canary_at: dict[float, set[str]] = {}

    def step_done(d):
        on_canary_at.setdefault(d.percent, set()).update(
            u for _, u, _, r in log[-len(users):] if r == "v2")
        return d.status != "running"

    doc = _until(ctl, client, users, log, step_done)
    assert doc.status == "promoted", doc.reason
    assert [h["event"] for h in doc.history] == ["start", "step_up", "promote"]
    assert all(status == 200 for _, _, status, _ in log)  # zero failed requests, swaps too
    assert on_canary_at[20] <= on_canary_at[50]  # no user left the canary on a step up
    time.sleep(0.4)
    assert {client.get(f"/v1/users/{u}/feed").json()["release"] for u in users} == {"v2"}
    # a restarted replica, still configured with v1, serves the promoted release
    again = RankingService(settings)
    try:
        assert again.release == "v2" and again.routing.canary is None
    finally:
        again.close()
    # the next rollout starts from the promoted release
    with pytest.raises(ConfigError, match="already the stable"):
        ctl.start(rel["v2"], [50, 100])
    # client events carry the release their user is routed to (only a step's edge differs)
    import duckdb

    ev = ctl.lake / "events"
    total, differ = duckdb.sql(
        f"SELECT count(*), count(*) FILTER (WHERE i.release <> r.release) FROM "
        f"read_parquet('{ev}/impression/*/*.parquet') i JOIN "
        f"read_parquet('{ev}/request/*/*.parquet') r USING (request_id)").fetchall()[0]
    assert total > 100 and differ / total < 0.05


def test_faulty_canary_is_rolled_back_and_only_its_users_fail(world):
    _, client, ctl, rel = world
    users = rel["users"][:60]
    ctl.start(rel["v2"], [25, 50, 100], RolloutPolicy(**POLICY),
              Fault(kind="errors", rate=1.0), stable=rel["v1"])
    log: list = []
    doc = _until(ctl, client, users, log, lambda d: d.status != "running")
    assert doc.status == "rolled_back" and doc.reason.startswith("error_rate")
    rollback = doc.history[-1]
    assert rollback["event"] == "rollback" and rollback["detected_after_s"] > 0
    failed = [(u, r) for _, u, status, r in log if status != 200]
    assert failed and {r for _, r in failed} == {"v2"}, sorted(  # only on the canary
        {(status, r) for _, _, status, r in log}, key=str)
    canary_users = {u for u in users if on_canary(doc.salt, u, 25)}
    assert {u for u, _ in failed} <= canary_users
    time.sleep(0.4)  # one refresh: every replica has let go of the canary
    after: list = []
    _drive(client, users, 0.3, after)
    assert {(status, r) for _, _, status, r in after} == {(200, "v1")}


def test_a_canary_that_raises_at_request_time_is_rolled_back(world):
    """No injected fault: the canary verifies and loads, then every ranking raises. Its
    errors are the canary's, so the controller rolls it back by itself."""
    from novarank.launch.drills import broken_release

    _, client, ctl, rel = world
    users = rel["users"][:60]
    # beside the others: a replica loads releases from its releases root only
    canary = broken_release(rel["v2"], rel["v2"].parent / "v2-broken")
    doc = ctl.start(canary, [25, 50, 100], RolloutPolicy(**POLICY), stable=rel["v1"])
    assert doc.fault is None
    log: list = []
    doc = _until(ctl, client, users, log, lambda d: d.status != "running")
    assert doc.status == "rolled_back" and doc.reason.startswith("error_rate"), doc.reason
    assert doc.history[-1]["detected_after_s"] > 0
    failed = [(u, r) for _, u, status, r in log if status != 200]
    assert failed and {r for _, r in failed} == {"v2-broken"}
    assert {u for u, _ in failed} <= {u for u in users if on_canary(doc.salt, u, 25)}
    time.sleep(0.4)  # one refresh: the replica has let go of the canary
    body = client.get(f"/v1/users/{failed[0][0]}/feed").json()
    assert body["release"] == "v1"  # rolled back: the same user is served by stable again


def test_latency_fault_is_caught_on_the_latency_test(world):
    _, client, ctl, rel = world
    ctl.start(rel["v2"], [50, 100], RolloutPolicy(**POLICY), Fault(kind="latency", ms=30),
              stable=rel["v1"])
    doc = _until(ctl, client, rel["users"][:40], [], lambda d: d.status != "running")
    assert doc.status == "rolled_back" and doc.reason.startswith("latency_"), doc.reason


def test_no_data_pauses_then_resume_and_abort(world):
    settings, client, ctl, rel = world
    ctl.start(rel["v2"], [10, 100], RolloutPolicy(step_seconds=0.1, max_step_seconds=0.3),
              stable=rel["v1"])
    time.sleep(0.4)
    doc = ctl.tick()  # no traffic at all: missing data is never a pass
    assert doc.status == "paused" and doc.reason.startswith("no data")
    with pytest.raises(ConfigError, match="paused"):
        ctl.start(rel["v2"], [10, 100])
    assert ctl.resume().status == "running"
    # a second controller (e.g. after a restart) carries on from the stored document
    other = RolloutController(open_state(settings.state_url), ctl.lake)
    assert other.current().id == doc.id and other.current().status == "running"
    assert other.abort("testing").status == "aborted"
    time.sleep(0.3)
    view = client.get("/v1/admin/rollout", headers={"Authorization": f"Bearer {TOKEN}"}).json()
    assert view["canary"] is None and view["stable"] == "v1"


def test_canary_that_fails_to_load_is_rolled_back(world, tmp_path):
    _, client, ctl, rel = world
    broken = tmp_path / "v2-broken"
    shutil.copytree(rel["v2"], broken)
    ctl.start(broken, [10, 100], RolloutPolicy(**POLICY), stable=rel["v1"])
    victim = next(broken.glob("arrays/*.npy"))
    victim.write_bytes(victim.read_bytes()[:-8] + b"tampered")  # after the controller checked
    deadline = time.monotonic() + 10
    doc = read_doc(ctl.state)
    while doc.status == "running" and time.monotonic() < deadline:
        time.sleep(0.2)
        doc = ctl.tick()
    assert doc.status == "rolled_back" and "failed to load" in doc.reason
    assert client.get(f"/v1/users/{rel['users'][0]}/feed").json()["release"] == "v1"


def test_an_interleaving_serves_merged_pages_and_concludes_for_the_release_users_prefer(
        world):
    """Users who click what the canary ranks and the stable release does not: the
    interleaved share is served pages drawn from both releases, each slot's release logged,
    and the controller concludes for the canary; the other users see the stable release."""
    import duckdb

    _, client, ctl, rel = world
    svc = client.app.state.service
    users = rel["users"][:80]
    with pytest.raises(ConfigError, match="one share below 100"):
        ctl.start(rel["v2"], [20, 50], stable=rel["v1"], mode="interleave")
    doc = ctl.start(rel["v2"], [50], RolloutPolicy(**{**POLICY, "max_step_seconds": 60}),
                    stable=rel["v1"], mode="interleave")
    deadline = time.monotonic() + 5
    while not svc.routing.interleave and time.monotonic() < deadline:
        time.sleep(0.05)
    toggles = svc.toggles.current()
    own = {(s.version, u): set(s.rec.catalog.item_ids[svc.feeds.rank(
        u, svc.audience.variant(u, None, toggles), toggles, s).items[:10]].tolist())
        for s in svc.routing.loaded() for u in users}
    served: dict[str, set[str]] = {"v1": set(), "v2": set()}
    t0 = time.monotonic()
    while doc.status == "running" and time.monotonic() - t0 < 40:
        for u in users:
            body = client.get(f"/v1/users/{u}/feed", params={"k": 10}).json()
            ids = [it["item_id"] for it in body["items"]]
            served[body["release"]].add(u)
            if body["release"] == "v2":  # every item one of the two placed near the top
                assert set(ids) <= own["v1", u] | own["v2", u] | _deeper(svc, u, toggles)
            liked = [{"type": "click", "user_id": u, "item_id": i, "position": p,
                      "request_id": body["request_id"]} for p, i in enumerate(ids)
                     if i in own["v2", u] - own["v1", u]]
            if liked:
                assert client.post("/v1/events", json=liked).status_code in (200, 202)
        doc = ctl.tick()
    assert doc.status == "concluded", doc.reason
    assert doc.history[-1]["event"] == "conclude" and doc.history[-1]["winner"] == "canary"
    assert doc.reason.startswith("users prefer the canary release v2")
    assert doc.history[-1]["interleaving"]["credit_share"] > 0.7
    assert served["v1"] and served["v2"] and not served["v1"] & served["v2"]  # sticky
    ev = ctl.lake / "events"
    teams = duckdb.sql(f"SELECT release, teams FROM read_parquet('{ev}/ranking/*/*.parquet', "
                       "union_by_name=true)").fetchall()
    assert {len(t) for r, t in teams if r == "v2"} == {10}
    assert all(t is None for r, t in teams if r == "v1")
    assert {x for r, t in teams if r == "v2" for x in t} == {0, 1}
    from typer.testing import CliRunner

    from novarank.cli.main import app

    said = CliRunner().invoke(app, ["launch", "interleaving", "--lake", str(ctl.lake),
                                    "--canary", "v2"])
    assert said.exit_code == 0 and "users prefer the canary" in said.output, said.output
    quiet = CliRunner().invoke(app, ["launch", "interleaving", "--lake", str(ctl.lake),
                                     "--canary", "v1"])  # v1 served no interleaved page
    assert quiet.exit_code == 1 and "0 pages" in quiet.output
    # concluded: the interleaved users are back on the stable release
    time.sleep(0.4)
    assert {client.get(f"/v1/users/{u}/feed").json()["release"] for u in users} == {"v1"}


def _deeper(svc, user: str, toggles) -> set[str]:
    """Either release's next items: a team skips what the other already showed."""
    return {x for s in svc.routing.loaded() for x in s.rec.catalog.item_ids[svc.feeds.rank(
        user, svc.audience.variant(user, None, toggles), toggles, s).items[:20]].tolist()}


def test_an_interleaved_feed_pages_on_without_repeats_each_page_crediting_its_slots(world):
    import duckdb

    _, client, ctl, rel = world
    svc = client.app.state.service
    ctl.start(rel["v2"], [50], RolloutPolicy(**POLICY), stable=rel["v1"], mode="interleave")
    deadline = time.monotonic() + 5
    while not svc.routing.interleave and time.monotonic() < deadline:
        time.sleep(0.05)
    u = next(u for u in rel["users"] if svc.routing.for_user(u) is svc.routing.canary)
    first = client.get(f"/v1/users/{u}/feed", params={"k": 5}).json()
    second = client.get(f"/v1/users/{u}/feed", params={"k": 5, "cursor": first["next_cursor"]}
                        ).json()
    ids = [it["item_id"] for b in (first, second) for it in b["items"]]
    assert first["release"] == second["release"] == "v2" and len(set(ids)) == 10
    svc.events.flush()
    rows = dict(duckdb.sql(f"SELECT request_id, teams FROM read_parquet("
                           f"'{ctl.lake}/events/ranking/*/*.parquet', union_by_name=true)"
                           ).fetchall())
    both = rows[first["request_id"]] + rows[second["request_id"]]
    assert len(both) == 10 and set(both) == {0, 1}


def test_start_refuses_what_it_cannot_roll_out(world, tmp_path):
    _, _, ctl, rel = world
    with pytest.raises(ConfigError, match="pass --stable"):
        ctl.start(rel["v2"], [10, 100])
    with pytest.raises(ConfigError, match="already the stable"):
        ctl.start(rel["v1"], [10, 100], stable=rel["v1"])
    with pytest.raises(ReleaseError):
        ctl.start(tmp_path, [10, 100], stable=rel["v1"])


def test_replica_restarted_mid_rollout_serves_the_same_split(world):
    settings, _, ctl, rel = world
    doc = ctl.start(rel["v2"], [30, 100], RolloutPolicy(**POLICY), stable=rel["v1"])
    fresh = RankingService(settings)  # startup reads the rollout before serving
    try:
        r = fresh.routing
        assert (r.stable.version, r.canary.version, r.percent) == ("v1", "v2", 30)
        for u in rel["users"][:100]:
            expected = "v2" if on_canary(doc.salt, u, 30) else "v1"
            assert fresh.audience.assignment(u).release == expected
    finally:
        fresh.close()


@pytest.mark.slow
def test_promotion_under_concurrent_load_fails_no_request(releases, tmp_path):
    """A real `novarank serve`, four clients in parallel, steps and the final swap: every
    request answers 200, and at the end everyone is on the new release."""
    import threading

    import httpx

    from novarank.cli.demo_service import KEYED, free_port, start_server, stop_server

    port = free_port()
    proc = start_server(releases["v1"], tmp_path, port)
    users, answers, stop = releases["users"], [], threading.Event()

    def client(offset: int) -> None:
        with httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=10,
                          headers=KEYED) as c:
            n = offset
            while not stop.is_set():
                try:
                    r = c.get(f"/v1/users/{users[n % len(users)]}/feed", params={"k": 5})
                    answers.append((r.status_code, r.json().get("release")))
                except httpx.HTTPError as exc:
                    answers.append((0, repr(exc)))
                n += 7

    threads = [threading.Thread(target=client, args=(i,)) for i in range(4)]
    for t in threads:
        t.start()
    try:
        ctl = RolloutController(open_state(f"sqlite:///{tmp_path}/state.db"), tmp_path / "lake")
        ctl.start(releases["v2"], [30, 60, 100], RolloutPolicy(**POLICY), stable=releases["v1"])
        doc = ctl.run(tick_s=0.3, timeout_s=60)
        assert doc.status == "promoted", doc.reason
        time.sleep(1.5)  # one refresh period and then some
        mark = len(answers)
        time.sleep(0.5)
    finally:
        stop.set()
        for t in threads:
            t.join()
        stop_server(proc)
    assert len(answers) > 500
    assert [a for a in answers if a[0] != 200] == []
    assert {r for _, r in answers} == {"v1", "v2"}
    assert {r for _, r in answers[mark:]} == {"v2"}


def test_rollout_cli(releases, tmp_path):
    from typer.testing import CliRunner

    from novarank.cli.main import app

    where = ["--state-url", f"sqlite:///{tmp_path}/s.db", "--lake", str(tmp_path / "lake")]
    run = CliRunner().invoke
    bad = run(app, ["rollout", "start", "--canary", str(releases["v2"]), "--stable",
                    str(releases["v1"]), "--steps", "50,10", "--no-watch", *where])
    assert bad.exit_code == 2 and "steps" in bad.output
    bad = run(app, ["rollout", "start", "--canary", str(releases["v2"]), "--stable",
                    str(releases["v1"]), "--fault", "boom", "--no-watch", *where])
    assert bad.exit_code == 2 and "fault" in bad.output
    ok = run(app, ["rollout", "start", "--canary", str(releases["v2"]), "--steps", "5,50,100",
                   "--no-watch", *where], env={"NOVARANK_RELEASE": str(releases["v1"])})
    assert ok.exit_code == 0 and "v1 -> v2 running at 5%" in ok.output, ok.output
    status = run(app, ["rollout", "status", *where])
    assert "start" in status.output and "running" in status.output
    assert run(app, ["rollout", "abort", "--reason", "drill over", *where]).exit_code == 0
    again = run(app, ["rollout", "resume", "--no-watch", *where])
    assert again.exit_code == 2 and "aborted, not paused" in again.output
    bad = run(app, ["rollout", "start", "--canary", str(releases["v2"]), "--mode", "blend",
                    "--no-watch", *where])
    assert bad.exit_code == 2 and "mode: canary or interleave" in bad.output
    ok = run(app, ["rollout", "start", "--canary", str(releases["v2"]), "--mode", "interleave",
                   "--steps", "20", "--no-watch", *where])
    assert ok.exit_code == 0 and "interleaving" in ok.output and "at 20%" in ok.output


def test_a_step_of_100_swaps_at_once_and_undoes_a_promotion(world):
    _, client, ctl, rel = world
    user = rel["users"][0]
    assert ctl.start(rel["v2"], [100], stable=rel["v1"]).status == "promoted"
    time.sleep(0.4)
    assert client.get(f"/v1/users/{user}/feed").json()["release"] == "v2"
    back = ctl.start(rel["v1"], [100])  # the runbook's way back to the previous release
    assert (back.stable.version, back.canary.version, back.lineage) == ("v2", "v1", ["v1"])
    time.sleep(0.4)
    assert client.get(f"/v1/users/{user}/feed").json()["release"] == "v1"


@pytest.mark.integration
def test_replicas_on_postgres_and_redis_agree_and_swap_together(releases, tmp_path):
    """Two replicas sharing PostgreSQL and Redis: the same users go to the canary on both,
    and an abort and a promotion reach both within about a second."""
    from tests.services import postgres_url, redis_url, unique_prefix

    prefix = unique_prefix()
    settings = ServiceSettings(release=releases["v1"], state_url=postgres_url(),
                               cache_url=redis_url(), counters_url=redis_url(),
                               key_prefix=prefix, events_url="null://", refresh_s=0.1)
    state = open_state(settings.state_url)
    state.reset()
    ctl = RolloutController(state, tmp_path / "lake")
    a, b = RankingService(settings), RankingService(settings)
    users = releases["users"][:200]

    def served(replica: RankingService) -> list[str]:
        return [replica.feeds.feed(u, 5).release for u in users]

    def wait_until(check, timeout: float = 5.0) -> float:
        t0 = time.monotonic()
        while not check():
            assert time.monotonic() - t0 < timeout
            time.sleep(0.05)
        return time.monotonic() - t0

    try:
        ctl.start(releases["v2"], [30, 100], RolloutPolicy(**POLICY), stable=releases["v1"])
        wait_until(lambda: a.routing.canary is not None and b.routing.canary is not None)
        on_a, on_b = served(a), served(b)
        assert on_a == on_b and 0.15 < on_a.count("v2") / len(users) < 0.45
        ctl.abort("drill")
        took = wait_until(lambda: set(served(a)) == set(served(b)) == {"v1"})
        assert took < 2.0
        ctl.start(releases["v2"], [100])
        wait_until(lambda: a.release == b.release == "v2")
        assert set(served(a)) == set(served(b)) == {"v2"}
    finally:
        a.close()
        b.close()
        state.reset()
        state.close()
        RedisCache(settings.cache_url, prefix=prefix).flush_prefix()


def test_one_controller_at_a_time_and_a_stale_tick_never_undoes_an_abort(world, monkeypatch):
    from novarank.launch import rollout

    settings, _, ctl, rel = world
    ctl.start(rel["v2"], [10, 100], RolloutPolicy(step_seconds=60), stable=rel["v1"])
    assert ctl.tick().controller == ctl.id  # the first tick takes the lease
    other = RolloutController(open_state(settings.state_url), ctl.lake)
    with pytest.raises(ConfigError, match="is run by controller"):
        other.tick()
    other.clock = lambda: time.time() + rollout.LEASE_S + 1  # the first one went silent
    assert other.tick().controller == other.id
    # an operator aborts while a tick is reading the lake: the tick must not write back
    # its stale "running" view (that would send users to the canary again)
    real = rollout.lake_samples

    def abort_meanwhile(*args):
        ctl.abort("operator")
        return real(*args)

    monkeypatch.setattr(rollout, "lake_samples", abort_meanwhile)
    assert other.tick().status == "aborted"
    assert read_doc(ctl.state).status == "aborted"


def test_watch_takes_over_from_a_killed_controller(world, monkeypatch):
    from novarank.launch import rollout

    monkeypatch.setattr(rollout, "LEASE_S", 0.6)
    settings, _, ctl, rel = world
    ctl.start(rel["v2"], [10, 100], RolloutPolicy(step_seconds=0.1, max_step_seconds=0.5),
              stable=rel["v1"])
    ctl.tick()  # then this controller "dies" holding the lease
    other = RolloutController(open_state(settings.state_url), ctl.lake)
    doc = other.run(tick_s=0.2, timeout_s=10)  # waits the lease out, then carries on
    assert doc.status == "paused" and doc.controller == other.id  # (no traffic: no data)


def test_the_warm_plan_follows_the_routing(world):
    _, client, ctl, rel = world
    doc = ctl.start(rel["v2"], [50, 100], RolloutPolicy(**POLICY), stable=rel["v1"])
    time.sleep(0.5)  # the replica loads the canary
    admin = {"Authorization": f"Bearer {TOKEN}"}
    assert client.get("/v1/admin/rollout", headers=admin).json()["canary"] == "v2"
    client.post("/v1/admin/cache/warm", headers=admin)
    for u in rel["users"][:40]:
        body = client.get(f"/v1/users/{u}/feed").json()
        assert body["cache"] == "l1"
        assert body["release"] == ("v2" if on_canary(doc.salt, u, 50) else "v1")


def test_a_canary_goes_live_with_the_uploads_made_before_it_loaded(world):
    _, client, ctl, rel = world
    admin = {"Authorization": f"Bearer {TOKEN}"}
    r = client.put("/v1/items/fresh-1", json={"title": "Fresh upload", "creator_id": "c3",
                                                "tags": ["new"], "published_at": int(time.time())})
    assert r.status_code == 200
    ctl.start(rel["v2"], [50, 100], RolloutPolicy(**POLICY), stable=rel["v1"])
    time.sleep(0.5)
    assert client.get("/v1/admin/rollout", headers=admin).json()["canary"] == "v2"
    canary = client.app.state.service.routing.canary
    assert canary.rec.catalog.index.get("fresh-1") is not None


def test_a_harm_only_to_one_cohort_is_caught_where_the_overall_ctr_hides_it():
    """Cold users (15% of impressions) lose 40% of their clicks: overall CTR falls 6%,
    inside the 10% margin; the cold cohort's own guardrail rolls back."""
    p = RolloutPolicy(min_requests=200, min_impressions=1000)
    rng = np.random.default_rng(8)

    def arm(cold_ctr: float) -> Arm:
        a = _arm(rng.gamma(4, 1.0, 400))
        for group, shown, ctr in (("cold", 15_000, cold_ctr), ("heavy", 85_000, 0.10)):
            clicks = int(shown * ctr)
            a.cohorts[group] = Arm(impressions=shown, clicks=clicks)
            a.impressions += shown
            a.clicks += clicks
        return a

    hurt = compare(arm(0.06), arm(0.10), p)
    assert [c.metric for c in hurt.failing()] == ["ctr_cold"]
    assert next(c for c in hurt.checks if c.metric == "ctr").verdict == "pass"
    same = compare(arm(0.10), arm(0.10), p)
    assert same.verdict == "pass" and {"ctr_cold", "ctr_heavy"} <= {c.metric for c in same.checks}
    small = arm(0.06)
    small.cohorts["cold"] = Arm(impressions=500, clicks=30)  # too few: not judged, not blocking
    assert "ctr_cold" not in {c.metric for c in compare(small, arm(0.10), p).checks}


def test_every_check_runs_per_cohort_errors_included():
    """The same checks in each cohort: a canary failing a quarter of newcomers' feeds and
    none of anyone else's is named by the newcomers' error-rate check (the total fails
    too, at 1.25%), and each cohort gets its latency check as well."""
    p = RolloutPolicy(min_requests=200, min_impressions=0)
    rng = np.random.default_rng(13)

    def arm(new_errors: int) -> Arm:
        a = _arm(rng.gamma(4, 1.0, 20_000))
        a.errors = new_errors
        a.cohorts["new"] = Arm(latency_ms={"hit": rng.gamma(4, 1.0, 1_000)}, requests=1_000,
                               errors=new_errors)
        a.cohorts["heavy"] = Arm(latency_ms={"hit": rng.gamma(4, 1.0, 19_000)},
                                 requests=19_000)
        return a

    failing = [c.metric for c in compare(arm(250), arm(0), p).failing()]
    assert "error_rate_new" in failing and "error_rate_heavy" not in failing
    checks = {c.metric for c in compare(arm(0), arm(0), p).checks}
    assert {"error_rate_new", "latency_hit_new", "error_rate_heavy"} <= checks


def test_the_watched_fraction_is_a_guardrail_when_required():
    rng = np.random.default_rng(12)
    lat = rng.gamma(4, 1.0, 400)

    def arm(mean: float, watches: int = 3_000) -> Arm:
        a = _arm(lat)
        a.watched = np.clip(rng.normal(mean, 0.2, watches), 0, 1)
        return a

    p = RolloutPolicy(min_requests=200, min_impressions=0, min_watches=1_000)
    assert [c.metric for c in compare(arm(0.35), arm(0.5), p).failing()] == [
        "watched_fraction"]
    assert compare(arm(0.5), arm(0.5), p).verdict == "pass"
    assert compare(arm(0.35, 50), arm(0.5, 50), p).verdict == "no_data"  # too few watches
    optional = RolloutPolicy(min_requests=200, min_impressions=0)  # min_watches 0
    assert compare(_arm(lat), _arm(lat), optional).verdict == "pass"


def test_the_lake_gives_each_arm_its_watches_joined_to_its_feeds(tmp_path):
    from novarank.launch.canary import lake_samples
    from novarank.telemetry.sinks import LakeWriter

    now = time.time()
    ms = int(now * 1000)
    lake = LakeWriter(tmp_path)
    lake.write("request", [{"event_id": f"q{i}", "ts": ms, "received_ms": ms,
                            "request_id": f"r{i}", "user_key": f"u{i}", "route": "feed",
                            "cache": "l1", "latency_ms": 1.0, "release": rel,
                            "cohort": "heavy"}
                           for i, rel in enumerate(["v2", "v1", "v1"])])
    lake.write("engagement", [
        {"event_id": "w0", "ts": ms, "received_ms": ms, "request_id": "r0", "kind": "watch",
         "value": 0.2},
        {"event_id": "w1", "ts": ms, "received_ms": ms, "request_id": "r1", "kind": "watch",
         "value": 0.6},
        {"event_id": "w1", "ts": ms, "received_ms": ms, "request_id": "r1", "kind": "watch",
         "value": 0.6},  # the same event twice: counted once
        {"event_id": "l2", "ts": ms, "received_ms": ms, "request_id": "r2", "kind": "like",
         "value": None}])
    lake.write("error", [{"event_id": "e0", "ts": ms, "received_ms": ms, "user_key": "u0",
                          "route": "/v1/users/{user_id}/feed", "status": 500, "release": "v2"},
                         {"event_id": "e9", "ts": ms, "received_ms": ms, "user_key": "u9",
                          "route": "/v1/users/{user_id}/feed", "status": 500,
                          "release": "v2"}])  # u9 has no feed: no cohort
    arms = lake_samples(tmp_path, "v2", "v1", now - 60, now + 60)
    assert arms["v2"].watched.tolist() == [0.2] and arms["v1"].watched.tolist() == [0.6]
    assert arms["v2"].errors == 2 and arms["v2"].cohorts["heavy"].errors == 1
    assert arms["v1"].cohorts["heavy"].requests == 2
    assert arms["v1"].cohorts["heavy"].watched.tolist() == [0.6]
