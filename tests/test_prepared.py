"""Prepared repeats (online/prepared.py): a user's repeat first page is answered from its
last answer, exactly as the full hit path answers it, and never once anything it was made
from has changed."""

from __future__ import annotations

import time

import pyarrow.parquet as pq
import pytest
from fastapi.testclient import TestClient

from novarank.api import create_app
from novarank.config import ServiceSettings

TOKEN = "prep-t0ken"
ADMIN = {"Authorization": f"Bearer {TOKEN}"}


def _settings(small_release, tmp_path, **extra) -> ServiceSettings:
    path, _, _ = small_release
    return ServiceSettings(release=path, state_url=f"sqlite:///{tmp_path}/s.db",
                           events_url=f"file://{tmp_path}/lake", auth="off",
                           admin_token=TOKEN, refresh_s=0.05, **extra)


@pytest.fixture()
def served(small_release, tmp_path):
    """A client, the users, and what each FeedPath.repeat call answered (bytes or None)."""
    with TestClient(create_app(_settings(small_release, tmp_path))) as c:
        feeds = c.app.state.service.feeds
        repeats: list[bytes | None] = []
        real = feeds.repeat

        def spy(user_id, k):
            repeats.append(real(user_id, k))
            return repeats[-1]

        feeds.repeat = spy
        yield c, small_release[1], repeats


def _counts(c: TestClient) -> dict[str, float]:
    """Every counter and histogram count the service exports (not sums: latency differs)."""
    out = {}
    for line in c.get("/metrics").text.splitlines():
        name = line.split("{")[0].split(" ")[0]
        if name.startswith("novarank_") and name.endswith(("_total", "_count")) and (
                "telemetry" not in name):
            out[line.rsplit(" ", 1)[0]] = float(line.rsplit(" ", 1)[1])
    return out


def _delta(before: dict[str, float], after: dict[str, float]) -> dict[str, float]:
    return {k: v - before.get(k, 0.0) for k, v in after.items() if v != before.get(k, 0.0)}


def test_a_repeat_answers_and_records_exactly_what_the_full_hit_path_does(served, tmp_path):
    c, users, repeats = served
    url = f"/v1/users/{users[0]}/feed?k=5"
    c.get(url)  # the miss ranks
    c.get("/metrics")  # (a scrape counts itself: taken once before comparing)
    before = _counts(c)
    hit = c.get(url).json()  # the full hit path, which prepares the repeat
    middle = _counts(c)
    repeat = c.get(url).json()
    after = _counts(c)
    assert repeats[-2:][0] is None and repeats[-1] is not None  # the second was prepared
    assert hit["cache"] == repeat["cache"] == "l1" and hit["request_id"] != repeat["request_id"]
    assert {**repeat, "request_id": None} == {**hit, "request_id": None}
    assert _delta(before, middle) == _delta(middle, after) != {}
    c.app.state.service.events.flush()
    for kind in ("request", "ranking"):
        rows = {r["request_id"]: r for p in (tmp_path / "lake" / "events" / kind).glob(
            "event_date=*/part-*.parquet") for r in pq.read_table(p).to_pylist()}
        a, b = rows[hit["request_id"]], rows[repeat["request_id"]]
        varying = {"event_id", "request_id", "ts", "received_ms", "latency_ms"}
        assert {k: v for k, v in a.items() if k not in varying} == {
            k: v for k, v in b.items() if k not in varying}, kind


def _prepared(c: TestClient, url: str, repeats: list) -> None:
    c.get(url)
    c.get(url)
    c.get(url)
    assert repeats[-1] is not None, "the repeat was not prepared"


def test_engagement_replaces_the_page_and_its_repeat(served):
    c, users, repeats = served
    url = f"/v1/users/{users[1]}/feed?k=5"
    _prepared(c, url, repeats)
    liked = c.get(url).json()["items"][0]["item_id"]
    c.post("/v1/events", json=[{"type": "like", "user_id": users[1], "item_id": liked}])
    deadline = time.monotonic() + 3
    while liked in [i["item_id"] for i in c.get(url).json()["items"]]:
        assert time.monotonic() < deadline, "a repeat outlived the like's invalidation"
        time.sleep(0.02)


def test_a_toggle_ends_every_repeat(served):
    c, users, repeats = served
    url = f"/v1/users/{users[2]}/feed?k=5"
    _prepared(c, url, repeats)
    c.put("/v1/admin/toggles", json={"kill_switch": True}, headers=ADMIN)
    assert c.get(url).json()["fallback"] is True and repeats[-1] is None
    c.put("/v1/admin/toggles", json={"kill_switch": False}, headers=ADMIN)
    assert c.get(url).json()["fallback"] is False


def test_an_unchanged_toggle_read_keeps_the_repeats(served):
    """The refresh loop re-reads the toggles every refresh_s; equal ones keep the object."""
    c, users, repeats = served
    url = f"/v1/users/{users[3]}/feed?k=5"
    _prepared(c, url, repeats)
    time.sleep(0.2)  # several refreshes
    c.get(url)
    assert repeats[-1] is not None


def test_a_title_change_reaches_a_prepared_page(served):
    c, users, repeats = served
    url = f"/v1/users/{users[4]}/feed?k=5"
    _prepared(c, url, repeats)
    item = c.get(url).json()["items"][0]["item_id"]
    r = c.put(f"/v1/items/{item}", json={"title": "Renamed while cached"})
    assert r.status_code == 200, r.text
    deadline = time.monotonic() + 3
    while c.get(url).json()["items"][0]["title"] != "Renamed while cached":
        assert time.monotonic() < deadline, "a repeat kept the old title"
        time.sleep(0.02)


def test_an_entry_gone_from_l1_or_another_k_or_a_new_routing_is_not_repeated(served):
    c, users, repeats = served
    service = c.app.state.service
    url = f"/v1/users/{users[5]}/feed?k=5"
    _prepared(c, url, repeats)
    service.cache.l1.clear()  # as eviction, expiry or a replica's drop leave it
    assert c.get(url).json()["cache"] != "l1" and repeats[-1] is None
    _prepared(c, url, repeats)
    assert c.get(f"/v1/users/{users[5]}/feed?k=4").status_code == 200 and repeats[-1] is None
    follower = service.releases
    r = follower.routing
    follower.routing = type(r)(r.stable, r.canary, r.percent, r.salt, r.fault,
                               dict(r.retired), r.interleave)
    c.get(url)
    assert repeats[-1] is None


def test_the_table_is_bounded_in_bytes_and_can_be_switched_off(small_release, tmp_path):
    users = small_release[1][:6]
    with TestClient(create_app(_settings(small_release, tmp_path / "big"))) as c:
        for user in users:
            c.get(f"/v1/users/{user}/feed?k=5")
            c.get(f"/v1/users/{user}/feed?k=5")
        prepared = c.app.state.service.feeds.prepared
        assert len(prepared) == len(users)
        one = max(prepared.size(u, f) for u, f in prepared._by_user.items())
    for limit in (2 * one + 1, 0):
        with TestClient(create_app(_settings(small_release, tmp_path / str(limit),
                                             feed_prepared_bytes=limit))) as c:
            prepared = c.app.state.service.feeds.prepared
            for user in users:
                c.get(f"/v1/users/{user}/feed?k=5")
                c.get(f"/v1/users/{user}/feed?k=5")
                assert prepared.bytes <= limit and prepared.bytes == sum(
                    prepared.size(u, f) for u, f in prepared._by_user.items())
            assert 0 < len(prepared) <= 2 if limit else len(prepared) == 0


def _fresh(value):
    """A copy made of new objects (what the table holds once L1 has let go of its entry)."""
    if isinstance(value, str):
        return (value + ".")[:-1]
    if isinstance(value, bytes):
        return bytes(bytearray(value))
    if isinstance(value, float):
        return value + 0.0
    if isinstance(value, tuple):
        return tuple(_fresh(v) for v in value)
    return value


def test_an_entry_counts_at_least_the_memory_it_holds(served):
    import tracemalloc

    c, users, _ = served
    for user in users[:40]:
        c.get(f"/v1/users/{user}/feed?k=10")
        c.get(f"/v1/users/{user}/feed?k=10")
    table = c.app.state.service.feeds.prepared._by_user
    assert len(table) >= 30
    tracemalloc.start()
    try:
        before = tracemalloc.get_traced_memory()[0]
        copies = {_fresh(u): _fresh(f) for u, f in table.items()}
        held = tracemalloc.get_traced_memory()[0] - before
    finally:
        tracemalloc.stop()
    counted = sum(c.app.state.service.feeds.prepared.size(u, f) for u, f in copies.items())
    assert held <= counted <= 1.5 * held, (held, counted)


def test_with_exploration_nothing_is_prepared(small_release, tmp_path):
    """Each exploration first page draws afresh: a repeat would replay one draw."""
    with TestClient(create_app(_settings(small_release, tmp_path,
                                         exploration_epsilon=0.5))) as c:
        for _ in range(4):
            c.get(f"/v1/users/{small_release[1][0]}/feed?k=5")
        assert len(c.app.state.service.feeds.prepared) == 0
