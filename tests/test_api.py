"""The HTTP contract, end to end, on the embedded and the scale-out backends."""

from __future__ import annotations

import time

import pytest
from fastapi import Request
from fastapi.testclient import TestClient

from novarank.api import create_app
from novarank.config import ServiceSettings, TrainConfig
from novarank.data.synthetic import SyntheticConfig, generate
from novarank.online.window import decode_cursor
from novarank.release import save_release
from novarank.stores import open_state
from novarank.stores.cache import RedisCache
from novarank.training import fit_model
from tests.services import postgres_url, redis_url, unique_prefix

TOKEN = "s3cret"
ADMIN = {"Authorization": f"Bearer {TOKEN}"}
SPLIT = {"control": 20.0, "treatment_a": 40.0, "treatment_b": 40.0}
VARIANTS = {"treatment_a": {"trending": 1.0}, "treatment_b": {"freshness": 3.0}}


@pytest.fixture(scope="module")
def release(tmp_path_factory):
    d = generate(SyntheticConfig(users=300, items=250, creators=30, events=20_000, seed=5))
    model = fit_model(d.dataset, TrainConfig(als_iterations=3, als_factors=8, tune=False))
    out = tmp_path_factory.mktemp("api") / "r1"
    save_release(model, out, version="r1")
    return out


def _settings(release, tmp_path, backend: str, **over) -> ServiceSettings:
    base = dict(release=release, events_url=f"file://{tmp_path}/lake", admin_token=TOKEN,
                split=SPLIT, variant_weights=VARIANTS, refresh_s=0.2)
    if backend == "embedded":
        base.update(state_url=f"sqlite:///{tmp_path}/state.db")
    else:
        prefix = unique_prefix()
        base.update(state_url=postgres_url(), cache_url=redis_url(), counters_url=redis_url(),
                    key_prefix=prefix)
    base.update(over)
    return ServiceSettings(**base)


@pytest.fixture(params=["embedded", pytest.param("scaleout", marks=pytest.mark.integration)])
def settings(request, release, tmp_path):
    s = _settings(release, tmp_path, request.param)
    state = open_state(s.state_url)
    state.reset()
    state.close()
    yield s
    if request.param == "scaleout":
        RedisCache(s.cache_url, prefix=s.key_prefix).flush_prefix()


@pytest.fixture()
def client(settings):
    with TestClient(create_app(settings)) as c:
        yield c


def test_feed_pages_without_duplicates(client):
    first = client.get("/v1/users/u3/feed", params={"k": 7})
    assert first.status_code == 200
    body = first.json()
    assert len(body["items"]) == 7 and len(body["request_id"]) == 32
    assert body["variant"] in SPLIT and body["release"] == "r1" and body["cache"] == "miss"
    seen = [i["item_id"] for i in body["items"]]
    cursor = body["next_cursor"]
    for _ in range(3):
        page = client.get("/v1/users/u3/feed", params={"k": 7, "cursor": cursor}).json()
        assert len(page["items"]) == 7
        seen += [i["item_id"] for i in page["items"]]
        assert page["request_id"] != body["request_id"]
        cursor = page["next_cursor"]
    assert len(seen) == len(set(seen)) == 28
    for item in body["items"]:
        if item["source"] == "ranked":
            assert set(item["reasons"]) == {"relevance", "freshness", "trending", "affinity",
                                            "quality"}


def test_second_request_is_an_l1_hit(client):
    assert client.get("/v1/users/u4/feed").json()["cache"] == "miss"
    assert client.get("/v1/users/u4/feed").json()["cache"] == "l1"


def test_bad_input_names_the_field(client):
    for params, field in (({"k": 0}, "k"), ({"k": 5000}, "k"), ({"cursor": "%%%"}, "cursor")):
        r = client.get("/v1/users/u1/feed", params=params)
        assert r.status_code == 422, params
        assert r.json()["error"]["field"] == field
    other = client.get("/v1/users/u1/feed", params={"k": 2}).json()["next_cursor"]
    r = client.get("/v1/users/u2/feed", params={"cursor": other})
    assert r.status_code == 404 and "another user" in r.json()["error"]["message"]
    r = client.get("/v1/users/u1/feed", params={"cursor": "bm90LWEtY3Vyc29y"})  # well-formed
    assert r.status_code == 404 and r.json()["error"]["field"] == "cursor"
    r = client.get("/v1/trending", params={"window": "2w"})
    assert r.status_code == 422 and r.json()["error"]["field"] == "window"
    r = client.get("/v1/items/nope/similar")
    assert r.status_code == 404 and r.json()["error"]["field"] == "item_id"
    r = client.get("/v1/search", params={"q": "   "})
    assert r.status_code == 422 and r.json()["error"]["field"] == "q"


def test_cold_user_gets_a_full_feed(client):
    body = client.get("/v1/users/brand-new-user/feed", params={"k": 12}).json()
    assert body["cold"] is True and len(body["items"]) == 12
    # newcomers share one window per variant: the next one is served from the cache
    other = client.get("/v1/users/another-new-user/feed", params={"k": 12},
                       headers={**ADMIN, "X-Variant-Override": body["variant"]}).json()
    assert other["cache"] in ("l1", "l2")
    assert [i["item_id"] for i in other["items"]] == [i["item_id"] for i in body["items"]]
    page2 = client.get("/v1/users/another-new-user/feed",
                       params={"k": 12, "cursor": other["next_cursor"]})
    assert page2.status_code == 200 and len(page2.json()["items"]) == 12


def test_engagement_reaches_the_next_feed_within_a_second(client):
    before = client.get("/v1/users/u5/feed", params={"k": 5}).json()
    liked = before["items"][0]["item_id"]
    t0 = time.monotonic()
    r = client.post("/v1/events", json=[
        {"type": "impression", "user_id": "u5", "item_id": liked,
         "request_id": before["request_id"]},
        {"type": "like", "user_id": "u5", "item_id": liked, "request_id": before["request_id"]}])
    assert r.json()["accepted"] == 2
    after = client.get("/v1/users/u5/feed", params={"k": 5}).json()
    assert time.monotonic() - t0 < 1.0
    # a new snapshot: ranked on this request or, already, by the refresh-ahead worker
    assert decode_cursor(after["next_cursor"])[0] != decode_cursor(before["next_cursor"])[0]
    assert liked not in [i["item_id"] for i in after["items"]]
    hist = client.get("/v1/users/u5/history").json()
    assert hist["recent_positive"][0] == liked  # affinity moved toward it


def test_events_are_accepted_one_by_one(client):
    batch = [
        {"type": "click", "user_id": "u6", "item_id": "v1"},
        {"type": "watch", "user_id": "u6", "item_id": "v2", "value": 1.5},
        {"type": "teleport", "user_id": "u6", "item_id": "v3"},
        {"type": "like", "user_id": "u6", "item_id": "no-such-item"},
        {"type": "share", "user_id": "", "item_id": "v4"},
        "not an object",
        {"type": "watch", "user_id": "u6", "item_id": "v5", "value": 0.4},
    ]
    body = client.post("/v1/events", json=batch).json()
    assert body["accepted"] == 2 and body["rejected"] == 5
    fields = {r["index"]: r.get("field") for r in body["results"] if not r["accepted"]}
    assert fields == {1: "value", 2: "type", 3: "item_id", 4: "user_id", 5: "event"}
    live = {e["item_id"] for e in client.get("/v1/users/u6/history").json()["live"]}
    assert live == {"v1", "v5"}  # accepted neighbours kept


def test_a_retried_batch_is_acknowledged_again_and_counted_once(client):
    """A client that lost the answer sends the batch again: same ids (given, or derived
    from the event's fields), so nothing is stored or counted twice."""
    ts = int(time.time()) - 10
    batch = [{"type": "like", "user_id": "u7", "item_id": "v3", "event_id": "retry-1"},
             {"type": "click", "user_id": "u7", "item_id": "v4", "ts": ts}]
    first = client.post("/v1/events", json=batch).json()
    assert first["accepted"] == 2 and first["duplicates"] == 0
    counted = client.get("/v1/items/v3").json()["stats"]["live_events"]
    again = client.post("/v1/events", json=batch).json()
    assert again["accepted"] == 2 and again["duplicates"] == 2
    assert all(r["duplicate"] for r in again["results"])
    live = [e["item_id"] for e in client.get("/v1/users/u7/history").json()["live"]]
    assert sorted(live) == ["v3", "v4"]
    assert client.get("/v1/items/v3").json()["stats"]["live_events"] == counted == {"like": 1}
    mixed = client.post("/v1/events", json=[batch[0], {**batch[1], "ts": ts + 1}]).json()
    assert [r.get("duplicate", False) for r in mixed["results"]] == [True, False]


def test_a_dead_background_loop_fails_readiness_and_is_named(client):
    import threading

    ready = client.get("/readyz").json()
    assert ready["ready"] and ready["threads"]["nr-refresh"] and ready["threads"]["nr-telemetry"]
    dead = threading.Thread(target=lambda: None, name="nr-dead-loop")
    dead.start()
    dead.join()
    client.app.state.service._threads.append(dead)
    r = client.get("/readyz")
    assert r.status_code == 503 and r.json()["threads"]["nr-dead-loop"] is False
    assert r.json()["checks"]["threads"] is False
    client.app.state.service._threads.remove(dead)


def test_every_table_that_grows_with_traffic_is_measured(client):
    client.post("/v1/events", json=[{"type": "like", "user_id": "u9", "item_id": "v2"}])
    client.delete("/v1/users/u8")
    lines = client.get("/metrics").text.splitlines()
    sizes = {ln.split('"')[1]: float(ln.split()[-1]) for ln in lines
             if ln.startswith("novarank_state_entries{")}
    assert set(sizes) == {"influence", "forgotten_users", "refresh_pending", "rate_buckets",
                          "verified_keys", "prepared_feeds"}
    assert sizes["influence"] >= 2 and sizes["forgotten_users"] >= 1  # the like, the erasure


def test_oversized_and_malformed_batches(client, settings):
    too_many = [{"type": "click", "user_id": "u", "item_id": "v1"}] * (settings.max_batch + 1)
    r = client.post("/v1/events", json=too_many)
    assert r.status_code == 413 and r.json()["error"]["field"] == "events"
    r = client.post("/v1/events", json={"nope": 1})
    assert r.status_code == 422 and r.json()["error"]["field"] == "events"


def test_new_upload_is_eligible_at_once(client):
    now = int(time.time())
    r = client.put("/v1/items/fresh-1", json={"title": "Fresh cooking upload", "creator_id": "c3",
                                              "tags": ["cooking"], "published_at": now})
    assert r.status_code == 200 and r.json()["in_release"] is False
    assert client.get("/v1/items/fresh-1").json()["title"] == "Fresh cooking upload"
    feed = client.get("/v1/users/new-person/feed", params={"k": 5},
                      headers={**ADMIN, "X-Variant-Override": "treatment_b"}).json()
    assert feed["variant"] == "treatment_b"
    assert feed["items"][0]["item_id"] == "fresh-1"  # freshness-heavy variant puts it first
    hits = client.get("/v1/search", params={"q": "fresh cooking"}).json()["items"]
    assert hits[0]["item_id"] == "fresh-1"
    r = client.post("/v1/events", json=[{"type": "click", "user_id": "u1", "item_id": "fresh-1"}])
    assert r.json()["accepted"] == 1
    r = client.put("/v1/items/bad", json={"title": "x", "tags": ["a|b"]})
    assert r.status_code == 422 and r.json()["error"]["field"] == "tags.0"
    r = client.put("/v1/items/bad", json={"title": ""})
    assert r.status_code == 422 and r.json()["error"]["field"] == "title"


def test_toggles_kill_switch_signals_and_variants(client):
    r = client.put("/v1/admin/toggles", json={"kill_switch": True}, headers=ADMIN)
    assert r.json()["kill_switch"] is True
    body = client.get("/v1/users/u7/feed", params={"k": 15}).json()
    assert body["fallback"] is True and len(body["items"]) == 15
    assert {i["source"] for i in body["items"]} == {"fallback"}
    client.put("/v1/admin/toggles", json={"kill_switch": False,
                                          "signals_off": ["relevance"]}, headers=ADMIN)
    body = client.get("/v1/users/u7/feed", params={"k": 5}).json()
    assert body["fallback"] is False
    ranked = [i for i in body["items"] if i["source"] == "ranked"]
    assert ranked and all(i["reasons"]["relevance"] == 0 for i in ranked)
    client.put("/v1/admin/toggles", json={"signals_off": [],
                                          "variants_off": ["treatment_a", "treatment_b"]},
               headers=ADMIN)
    a = client.get("/v1/users/u8/assignment").json()
    assert a["variant"] == "control"
    r = client.put("/v1/admin/toggles", json={"signals_off": ["magic"]}, headers=ADMIN)
    assert r.status_code == 422 and r.json()["error"]["field"] == "signals_off.0"
    client.put("/v1/admin/toggles", json={"variants_off": []}, headers=ADMIN)


def test_admin_requires_the_token(client):
    assert client.get("/v1/admin/toggles").status_code == 401
    assert client.get("/v1/admin/toggles",
                      headers={"Authorization": "Bearer wrong"}).status_code == 401
    r = client.get("/v1/users/u1/feed", headers={"X-Variant-Override": "control"})
    assert r.status_code == 401
    assert client.get("/v1/admin/release", headers=ADMIN).json()["version"] == "r1"


def test_admin_is_disabled_without_a_token(release, tmp_path):
    s = _settings(release, tmp_path, "embedded", admin_token=None)
    with TestClient(create_app(s)) as c:
        r = c.put("/v1/admin/toggles", json={"kill_switch": True},
                  headers={"Authorization": "Bearer anything"})
        assert r.status_code == 403 and "disabled" in r.json()["error"]["message"]


def test_forget_user(client):
    client.post("/v1/events", json=[{"type": "like", "user_id": "u9", "item_id": "v1"}])
    assert client.get("/v1/users/u9/history").json()["release_history_items"] > 0
    body = client.delete("/v1/users/u9").json()
    assert body == {"user_id": "u9", "deleted_events": 1, "forgotten": True}
    hist = client.get("/v1/users/u9/history").json()
    assert hist["live"] == [] and hist["forgotten"] is True
    assert hist["recent_positive"] == [] and hist["release_history_items"] == 0
    assert client.get("/v1/users/u9/feed").json()["cold"] is True


def test_similar_creators_trending_item(client):
    sim = client.get("/v1/items/v10/similar", params={"k": 6}).json()["items"]
    assert len(sim) == 6 and "v10" not in [i["item_id"] for i in sim]
    creators = client.get("/v1/users/u2/creators", params={"k": 4}).json()["creators"]
    assert len(creators) == 4 and len({c["creator_id"] for c in creators}) == 4
    client.post("/v1/events", json=[{"type": "share", "user_id": f"x{n}", "item_id": "v33"}
                                    for n in range(5)])
    trend = client.get("/v1/trending", params={"window": "1h", "k": 5}).json()["items"]
    assert trend[0]["item_id"] == "v33" and trend[0]["source"] == "live"
    item = client.get("/v1/items/v33").json()
    assert item["stats"]["live_events"]["share"] == 5


def test_search_is_reranked_for_a_known_user(client):
    word = client.get("/v1/items/v10").json()["title"].split()[0]
    anonymous = client.get("/v1/search", params={"q": word, "k": 10}).json()["items"]
    personal = client.get("/v1/search", params={"q": word, "k": 10, "user_id": "u2"})
    assert personal.status_code == 200 and len(anonymous) > 1
    assert {i["item_id"] for i in personal.json()["items"]} <= {
        i["item_id"] for i in client.get("/v1/search", params={"q": word, "k": 200}).json()[
            "items"]}


def test_operations_endpoints(client):
    assert client.get("/healthz").json() == {"status": "ok"}
    ready = client.get("/readyz").json()
    assert ready["ready"] is True and ready["checks"]["state"] is True
    client.get("/v1/users/u1/feed")
    text = client.get("/metrics").text
    for name in ("novarank_request_duration_seconds_bucket", "novarank_requests_total",
                 "novarank_cache_requests_total", "novarank_fallback_total",
                 "novarank_feed_fill_ratio", "novarank_events_total",
                 "novarank_assignments_total", "novarank_cache_bytes"):
        assert name in text, name
    assert 'route="/v1/users/{user_id}/feed"' in text
    spec = client.get("/openapi.json").json()
    product = [(path, method) for path, ops in spec["paths"].items() for method in ops
               if path.startswith("/v1/") and "admin" not in path]
    assert len(product) == 11  # the eleven endpoints of the service contract


@pytest.mark.integration
def test_two_replicas_share_l2_and_toggles(release, tmp_path):
    s = _settings(release, tmp_path, "scaleout")
    open_state(s.state_url).reset()
    try:
        with TestClient(create_app(s)) as a, TestClient(create_app(s)) as b:
            assert a.get("/v1/users/u11/feed").json()["cache"] == "miss"
            assert b.get("/v1/users/u11/feed").json()["cache"] == "l2"  # filled by the other
            b.get("/v1/users/u11/feed")
            a.put("/v1/admin/toggles", json={"kill_switch": True}, headers=ADMIN)
            t0 = time.monotonic()
            while not b.get("/v1/users/u11/feed").json()["fallback"]:
                assert time.monotonic() - t0 < 2.0, "toggle not seen by the other replica in 2 s"
                time.sleep(0.05)
            a.put("/v1/admin/toggles", json={"kill_switch": False}, headers=ADMIN)
            time.sleep(0.3)
            liked = b.get("/v1/users/u12/feed").json()["items"][0]["item_id"]
            assert b.get("/v1/users/u12/feed").json()["cache"] == "l1"
            a.post("/v1/events", json=[{"type": "like", "user_id": "u12", "item_id": liked}])
            t0 = time.monotonic()
            while liked in [i["item_id"] for i in b.get("/v1/users/u12/feed").json()["items"]]:
                assert time.monotonic() - t0 < 1.0, "other replica kept a stale feed"
                time.sleep(0.02)
    finally:
        RedisCache(s.cache_url, prefix=s.key_prefix).flush_prefix()


def test_refresh_ahead_reranks_after_engagement(client):
    before = client.get("/v1/users/u13/feed", params={"k": 5}).json()
    liked = before["items"][0]["item_id"]
    client.post("/v1/events", json=[{"type": "like", "user_id": "u13", "item_id": liked}])
    deadline = time.monotonic() + 3
    while True:
        text = client.get("/metrics").text
        done = [ln for ln in text.splitlines()
                if ln.startswith("novarank_refresh_ahead_total ")]
        if done and float(done[0].split()[1]) >= 1:
            break
        assert time.monotonic() < deadline, "no background re-rank after the like"
        time.sleep(0.02)
    after = client.get("/v1/users/u13/feed", params={"k": 5}).json()
    assert after["cache"] == "l1" and liked not in [i["item_id"] for i in after["items"]]


def test_unexpected_error_is_a_500_and_the_connection_survives(release, tmp_path):
    """A bug answers 500 JSON (and an error event); the client's keep-alive connection
    still serves its next request instead of being reset."""
    import threading

    import httpx
    import uvicorn

    from novarank.cli.demo_service import free_port

    app = create_app(_settings(release, tmp_path, "embedded"))

    @app.get("/boom")
    def boom() -> None:
        raise RuntimeError("a bug")

    @app.get("/peer")
    def peer(request: Request) -> int:
        return request.client.port  # the same port = the same connection

    port = free_port()
    server = uvicorn.Server(uvicorn.Config(app, port=port, log_level="critical"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    try:
        with httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=10) as c:
            for _ in range(100):
                if server.started:
                    break
                time.sleep(0.05)
            before = c.get("/peer").json()
            bad = c.get("/boom")
            assert bad.status_code == 500 and bad.json()["error"]["code"] == "internal"
            assert c.get("/peer").json() == before  # not closed by the server
            assert c.get("/v1/users/u1/feed").status_code == 200
    finally:
        server.should_exit = True
        thread.join(timeout=10)


def test_a_server_side_error_is_never_the_clients_422(client, monkeypatch):
    from novarank.errors import ConfigError

    service = client.app.state.service

    def broken(*_a, **_k):
        raise ConfigError("ranker: weights for variant 'x' are missing from the release")

    monkeypatch.setattr(service.discovery, "trending", broken)
    r = client.get("/v1/trending")
    assert r.status_code == 500 and r.json()["error"]["code"] == "server_error"
    assert "weights for variant" in r.json()["error"]["message"]
