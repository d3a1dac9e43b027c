"""The feed's pure-ASGI path (api/fastpath.py) answers hits and misses exactly as the route
would, with the same metrics, budget and telemetry, and hands everything else to the full
app."""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient

from novarank.api import create_app
from novarank.api.fastpath import feed_params, feed_user
from novarank.config import ServiceSettings

TOKEN = "fast-t0ken"
KEY = {"Authorization": f"Bearer {TOKEN}"}


@pytest.fixture()
def served(small_release, tmp_path):
    path, users, _ = small_release
    settings = ServiceSettings(release=path, state_url=f"sqlite:///{tmp_path}/s.db",
                               events_url=f"file://{tmp_path}/lake", auth="on",
                               admin_token=TOKEN)
    with TestClient(create_app(settings)) as c:
        answered: list[bool] = []
        fast = c.app.fast_feed
        real = fast.answer

        async def spy(scope, send):
            answered.append(await real(scope, send))
            return answered[-1]

        fast.answer = spy
        yield c, users, answered


def _count(c: TestClient, status: str) -> float:
    for line in c.get("/metrics").text.splitlines():
        if line.startswith('novarank_requests_total{route="/v1/users/{user_id}/feed",'
                           f'status="{status}"}}'):
            return float(line.split()[-1])
    return 0.0


def test_a_hit_is_answered_before_the_framework_as_the_route_answers_it(served):
    c, users, answered = served
    miss = c.get(f"/v1/users/{users[0]}/feed?k=5", headers=KEY)
    hit = c.get(f"/v1/users/{users[0]}/feed?k=5", headers=KEY)
    assert answered[:2] == [True, True]  # the miss ranked on the path's pool, the hit in L1
    full = c.get(f"/v1/users/{users[0]}/feed?k=5",
                 headers={**KEY, "Cache-Control": "no-cache"})  # the route's own answer
    assert answered[2] is False and set(full.json()) == set(miss.json())
    a, b = miss.json(), hit.json()
    assert (a["cache"], b["cache"]) == ("miss", "l1")
    assert a["items"] == b["items"] and a["next_cursor"] == b["next_cursor"]
    assert a["request_id"] != b["request_id"]
    assert set(a) == set(b) and hit.headers["content-type"] == "application/json"
    assert _count(c, "200") == 3  # all counted under the route's template
    page2 = c.get(f"/v1/users/{users[0]}/feed", params={"k": 5, "cursor": b["next_cursor"]},
                  headers=KEY)
    assert page2.status_code == 200 and answered[-1] is True  # the cursor page is in L1 too
    assert not {i["item_id"] for i in page2.json()["items"]} & {i["item_id"] for i in b["items"]}


def test_the_hit_emits_its_request_and_ranking_events(small_release, tmp_path):
    """In the lake after shutdown, as for any feed: what impressions join back to."""
    import pyarrow.parquet as pq

    path, users, _ = small_release
    settings = ServiceSettings(release=path, state_url=f"sqlite:///{tmp_path}/s.db",
                               events_url=f"file://{tmp_path}/lake")
    with TestClient(create_app(settings)) as c:
        c.get(f"/v1/users/{users[1]}/feed?k=3")
        hit = c.get(f"/v1/users/{users[1]}/feed?k=3").json()
    assert hit["cache"] == "l1"
    for kind in ("request", "ranking"):
        parts = (tmp_path / "lake" / "events" / kind).glob("event_date=*/part-*.parquet")
        rows = [r for p in parts for r in pq.read_table(p).to_pylist()
                if r["request_id"] == hit["request_id"]]
        assert len(rows) == 1, kind
        if kind == "ranking":
            assert rows[0]["items"] == [i["item_id"] for i in hit["items"]]
        else:  # the user's cohort, what the canary's per-cohort guardrails group by
            assert rows[0]["cohort"] in ("cold", "light", "medium", "heavy")


def test_a_newcomers_feed_is_tagged_with_the_new_cohort(small_release, tmp_path):
    import pyarrow.parquet as pq

    path, _, _ = small_release
    settings = ServiceSettings(release=path, state_url=f"sqlite:///{tmp_path}/s.db",
                               events_url=f"file://{tmp_path}/lake")
    with TestClient(create_app(settings)) as c:
        ids = [c.get(f"/v1/users/never-seen-{i}/feed?k=3").json()["request_id"]
               for i in range(2)]  # the second is the shared cold window's hit
    parts = (tmp_path / "lake" / "events" / "request").glob("event_date=*/part-*.parquet")
    rows = {r["request_id"]: r for p in parts for r in pq.read_table(p).to_pylist()}
    assert [rows[i]["cohort"] for i in ids] == ["new", "new"]


@pytest.mark.parametrize("query,headers,status", [
    ("k=5", {}, 401),  # no key: the app's 401, in our shape
    ("k=5", {"Authorization": "Bearer wrong"}, 401),
    ("k=abc", KEY, 422),
    ("k=", KEY, 422),
    ("k=0", KEY, 422),
    ("cursor=%21%21", KEY, 422),
    ("cursor=bm90LWEtY3Vyc29y", KEY, 404),
])
def test_what_the_fast_path_does_not_answer_gets_the_apps_answer(served, query, headers,
                                                                  status):
    c, users, answered = served
    c.get(f"/v1/users/{users[2]}/feed?k=5", headers=KEY)
    c.get(f"/v1/users/{users[2]}/feed?k=5", headers=KEY)  # now in L1
    r = c.get(f"/v1/users/{users[2]}/feed?{query}", headers=headers)
    assert r.status_code == status and answered[-1] is False
    assert "error" in r.json()


def test_admin_headers_take_the_full_way(served):
    c, users, answered = served
    c.get(f"/v1/users/{users[3]}/feed", headers=KEY)
    r = c.get(f"/v1/users/{users[3]}/feed", headers={**KEY, "Cache-Control": "no-cache"})
    assert r.json()["cache"] == "miss" and answered[-1] is False


def test_feed_paths_and_parameters_are_read_as_the_route_reads_them():
    assert feed_user("/v1/users/u1/feed") == "u1"
    assert feed_user("/v1/users/a/b/feed") is None and feed_user("/v1/users//feed") is None
    assert feed_user("/v1/users/u1/creators") is None
    assert feed_params(b"") == (10, None)
    assert feed_params(b"k=7&cursor=abc_-1") == (7, "abc_-1")
    assert feed_params(b"k=3&k=4") == (4, None)  # the last value wins, as in the route
    assert feed_params(b"k=-1") is None and feed_params(b"cursor=a%2Fb") is None


def test_a_failure_on_the_fast_path_is_counted_once(served, monkeypatch):
    """The fast path hands a failure to the full app, which meets it again: only that one
    counts it against the release (and writes its error event)."""
    c, users, answered = served
    service = c.app.state.service

    def broken(*_a, **_k):
        raise RuntimeError("index out of range")

    monkeypatch.setattr(service.feeds, "_feed", broken)
    r = c.get(f"/v1/users/{users[4]}/feed", headers=KEY)
    assert r.status_code == 500 and answered[-1] is False
    assert r.json()["error"]["release"] == "r1"
    errors = [line for line in c.get("/metrics").text.splitlines()
              if line.startswith("novarank_release_requests_total{") and 'outcome="error"' in line]
    assert [float(line.split()[-1]) for line in errors] == [1.0]


def test_a_miss_that_fails_on_the_fast_path_is_answered_by_the_app_and_counted_once(
        served, monkeypatch):
    """Ranked once: the error rides to the route, which raises it (no second ranking)."""
    c, users, answered = served
    service = c.app.state.service
    calls: list[str] = []

    def broken(user_id, *_a, **_k):
        calls.append(user_id)
        raise RuntimeError("index out of range")

    monkeypatch.setattr(service.feeds, "_window_for", broken)
    r = c.get(f"/v1/users/{users[5]}/feed", headers=KEY)
    assert r.status_code == 500 and answered[-1] is False
    assert r.json()["error"]["release"] == "r1" and calls == [users[5]]
    errors = [line for line in c.get("/metrics").text.splitlines()
              if line.startswith("novarank_release_requests_total{") and 'outcome="error"' in line]
    assert [float(line.split()[-1]) for line in errors] == [1.0]
    monkeypatch.undo()
    assert c.get(f"/v1/users/{users[5]}/feed", headers=KEY).status_code == 200  # nothing stuck


def test_the_fast_path_spends_the_miss_budget_and_the_app_refuses_past_it(small_release,
                                                                           tmp_path):
    path, users, _ = small_release
    settings = ServiceSettings(release=path, state_url=f"sqlite:///{tmp_path}/s.db",
                               events_url="null://", auth="on", admin_token=TOKEN,
                               rate_limits={"miss": 1.0})  # a burst of two misses
    with TestClient(create_app(settings)) as c:
        got = [c.get(f"/v1/users/{u}/feed", headers=KEY).status_code for u in users[:4]]
        assert got[:2] == [200, 200] and got[2] == 429
        assert c.get(f"/v1/users/{users[0]}/feed", headers=KEY).status_code == 200  # a hit


def test_the_hand_split_query_reads_what_parse_qsl_reads():
    """Queries without escapes are split by hand; the answer is parse_qsl's, case by case."""
    from urllib.parse import parse_qsl

    from hypothesis import given, settings
    from hypothesis import strategies as st

    from novarank.api.fastpath import read_params

    def reference(query: bytes) -> tuple[int, str | None] | None:
        return read_params(parse_qsl(query.decode("latin-1"), keep_blank_values=True))

    @settings(max_examples=500, deadline=None)
    @given(st.text(alphabet="kcursor=&01239_-ab", max_size=30))
    def check(text: str) -> None:
        assert feed_params(text.encode()) == reference(text.encode())
        assert feed_params(text.encode()) == reference(text.encode())  # remembered or not

    check()


def test_remembered_queries_are_bounded():
    feed_params.cache_clear()
    assert feed_params(b"k=7") == (7, None) and feed_params(b"k=x") is None
    assert feed_params(b"k=5&cursor=abc")[1] == "abc"
    for k in range(1100):
        assert feed_params(f"k={k}".encode()) == (k, None)
    info = feed_params.cache_info()
    assert info.currsize <= info.maxsize == 1024


def test_with_exploration_first_pages_stay_on_the_fast_path_and_draw_once(small_release,
                                                                          tmp_path):
    """A first page with exploration on is answered from L1 when its draw keeps the
    ranker's page; a draw that comes up is stored on the full path with that same draw, and
    neither spends the miss budget (only ranking does), so the explored share stays epsilon."""
    import pyarrow.parquet as pq

    path, users, _ = small_release
    settings = ServiceSettings(release=path, state_url=f"sqlite:///{tmp_path}/s.db",
                               events_url=f"file://{tmp_path}/lake", auth="on",
                               admin_token=TOKEN, exploration_epsilon=0.3,
                               rate_limits={"miss": 1.0})  # a burst of two misses
    with TestClient(create_app(settings)) as c:
        answered: list[bool] = []
        real = c.app.fast_feed.answer

        async def spy(scope, send):
            answered.append(await real(scope, send))
            return answered[-1]

        c.app.fast_feed.answer = spy
        got = [c.get(f"/v1/users/{users[0]}/feed?k=5", headers=KEY) for _ in range(200)]
        assert {r.status_code for r in got} == {200}  # one miss, then no budget spent
        assert all(answered) and [r.json()["cache"] for r in got[1:]].count("miss") == 0
    rows = pq.read_table(tmp_path / "lake" / "events" / "ranking").to_pylist()
    flags = [r["explored"] for r in rows if r["request_id"] in
             {g.json()["request_id"] for g in got}]
    assert len(flags) == 200 and 35 <= sum(flags) <= 85  # 0.3 of 200: one draw per request
