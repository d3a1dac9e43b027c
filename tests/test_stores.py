"""One contract suite per store interface, run against every backend for real."""

from __future__ import annotations

import time

import pytest

from novarank.errors import ConfigError
from novarank.stores import open_cache, open_counters, open_state
from novarank.stores.cache import MemoryCache, RedisCache
from novarank.stores.state import CatalogItem, Engagement, PostgresStateStore
from tests.services import postgres_url, redis_url, unique_prefix

BACKENDS = ["memory", pytest.param("redis", marks=pytest.mark.integration)]


def _open(opener, param: str):
    """The same store role on the embedded backend or, for real, on the local Redis."""
    return opener("memory://") if param == "memory" else opener(redis_url(),
                                                                prefix=unique_prefix())


@pytest.fixture(params=BACKENDS)
def cache(request):
    c = _open(open_cache, request.param)
    yield c
    if isinstance(c, RedisCache):
        c.flush_prefix()
    c.close()


def test_cache_contract(cache):
    assert cache.get_many(["a", "b"]) == [None, None]
    cache.set_many({"a": b"1", "b": b"22"}, ttl_s=30)
    assert cache.get_many(["a", "x", "b"]) == [b"1", None, b"22"]
    cache.delete(["a"])
    assert cache.get_many(["a", "b"]) == [None, b"22"]
    assert cache.incr("gen:u1") == 1
    assert cache.incr("gen:u1") == 2
    assert cache.ping()


def test_cache_entries_expire(cache):
    cache.set_many({"short": b"x"}, ttl_s=0.2)
    assert cache.get_many(["short"]) == [b"x"]
    time.sleep(0.35)
    assert cache.get_many(["short"]) == [None]


def test_memory_cache_is_bounded_by_entries_and_bytes():
    c = MemoryCache(max_entries=3, max_bytes=10_000)
    c.set_many({f"k{i}": b"v" for i in range(5)}, 60)
    assert len(c) == 3 and c.evictions == 2
    assert c.get_many(["k0", "k4"]) == [None, b"v"]  # least recently used went first
    big = MemoryCache(max_entries=100, max_bytes=1_000)
    big.set_many({f"b{i}": b"x" * 300 for i in range(5)}, 60)
    assert big.bytes_used <= 1_000 and len(big) < 5
    big.set_many({"huge": b"x" * 5_000}, 60)
    assert big.get_many(["huge"]) == [None]  # larger than the cache: never stored


def test_a_memory_cache_entry_is_the_same_object_until_the_key_changes():
    """What prepared repeats (online/prepared.py) rely on."""
    c = MemoryCache()
    c.set_many({"k": b"v", "short": b"s"}, 60)
    first = c.entry("k")
    assert first is not None and first[0] == b"v" and c.entry("k") is first
    c.set_many({"k": b"v"}, 60)  # set again, even to the same value: a new entry
    assert c.entry("k") is not first and c.entry("k") is not None
    c.delete(["k"])
    assert c.entry("k") is None
    c.set_many({"short": b"s"}, 0.05)
    time.sleep(0.1)
    assert c.entry("short") is None and c.get_many(["short"]) == [None]


@pytest.fixture(params=BACKENDS)
def counters(request):
    c = _open(open_counters, request.param)
    yield c
    c.forget()


def test_counters_contract(counters):
    hour = 3_600
    now = 1_000 * hour
    counters.add({"a": 2.0, "b": 1.0}, now - 10)
    counters.add({"a": 1.0}, now - 10)
    counters.add({"b": 8.0}, now - 24 * hour)  # one day older
    got = counters.decayed(now, half_life_s=24 * hour, horizon_s=3 * 24 * hour)
    assert got["a"] == pytest.approx(3.0, rel=0.02)
    assert got["b"] == pytest.approx(1.0 + 4.0, rel=0.03)  # 8 halves after one half-life
    assert counters.decayed(now + 10 * 24 * hour, 24 * hour, 2 * 24 * hour) == {}


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.integration)])
def state(request, tmp_path):
    if request.param == "sqlite":
        s = open_state(f"sqlite:///{tmp_path}/state.db")
    else:
        s = open_state(postgres_url())
        assert isinstance(s, PostgresStateStore)
    s.reset()
    yield s
    s.reset()
    s.close()


def test_state_engagement_and_forgetting(state):
    rows = [Engagement("u1", "i1", 2, 0.5, 100), Engagement("u1", "i2", 3, 1.0, 200),
            Engagement("u2", "i1", 1, 1.0, 150)]
    state.add_engagement(rows)
    hist = state.history("u1")
    assert [(e.item_id, e.ts) for e in hist] == [("i2", 200), ("i1", 100)]  # newest first
    assert hist[1].value == pytest.approx(0.5)
    assert state.history("u1", limit=1)[0].item_id == "i2"
    assert state.delete_user("u1") == 2
    assert state.history("u1") == []
    assert len(state.history("u2")) == 1


def test_state_stores_an_event_id_once(state):
    """A client's retry of an acknowledged batch is not counted twice."""
    first = [Engagement("u1", "i1", 3, 1.0, 100, "e1"), Engagement("u1", "i2", 3, 1.0, 101, "e2"),
             Engagement("u1", "i3", 1, 1.0, 102)]  # no id: always stored
    assert state.add_engagement(first) == [True, True, True]
    again = [Engagement("u1", "i2", 3, 1.0, 101, "e2"), Engagement("u1", "i4", 3, 1.0, 103, "e4"),
             Engagement("u1", "i4", 3, 1.0, 103, "e4")]  # a repeat within the batch, too
    assert state.add_engagement(again) == [False, True, False]
    assert sorted(e.item_id for e in state.history("u1")) == ["i1", "i2", "i3", "i4"]
    assert state.item_stats("i2") == {3: 1}
    assert {e.event_id for e in state.history("u1")} == {"e1", "e2", "e4", None}


def test_a_store_made_before_event_ids_is_migrated(tmp_path):
    import sqlite3

    from novarank.stores.state import SQLiteStateStore

    path = tmp_path / "old.db"
    with sqlite3.connect(path) as old:
        old.execute("CREATE TABLE nr_engagement (user_id TEXT NOT NULL, item_id TEXT NOT NULL,"
                    " event SMALLINT NOT NULL, value REAL NOT NULL, ts BIGINT NOT NULL)")
        old.execute("INSERT INTO nr_engagement VALUES ('u1', 'i1', 3, 1.0, 100)")
    s = SQLiteStateStore(path)
    assert [e.event_id for e in s.history("u1")] == [None]
    assert s.add_engagement([Engagement("u1", "i2", 3, 1.0, 101, "e1")] * 2) == [True, False]
    s.close()


def test_state_catalog_upserts_are_sequenced(state):
    s1 = state.upsert_item(CatalogItem("new1", "First", "c9", "a|b", 1_000, 60.0))
    s2 = state.upsert_item(CatalogItem("new2", "Second"))
    s3 = state.upsert_item(CatalogItem("new1", "First, renamed", available=False))
    assert s1 < s2 < s3
    since = state.items_since(s1)
    assert [(i.item_id, i.seq) for i in since] == [("new2", s2), ("new1", s3)]
    got = state.get_item("new1")
    assert got is not None and got.title == "First, renamed" and got.available is False
    assert state.get_item("missing") is None
    assert state.get_item("new2").published_at is None


def test_state_documents(state):
    state.set_doc("toggle:kill_switch", True)
    state.set_doc("toggle:signals_off", ["freshness"])
    state.set_doc("rollout:current", {"step": 2})
    assert state.get_docs("toggle:") == {"toggle:kill_switch": True,
                                         "toggle:signals_off": ["freshness"]}
    state.set_doc("toggle:kill_switch", False)
    assert state.get_docs("toggle:kill")["toggle:kill_switch"] is False
    assert state.ping()


def test_state_document_updates_do_not_lose_writes(state, tmp_path):
    """update_doc is a locked read-modify-write: writers on separate connections (as two
    replicas, or a controller and an operator) never overwrite each other's change."""
    import threading

    assert state.update_doc("n", lambda v: None) is None and state.get_docs("n") == {}
    assert state.update_doc("n", lambda v: {"count": 0}) == {"count": 0}
    url = (f"sqlite:///{tmp_path}/state.db" if state.name == "sqlite" else postgres_url())
    others = [open_state(url) for _ in range(3)]

    def bump(store) -> None:
        for _ in range(40):
            store.update_doc("n", lambda v: {"count": v["count"] + 1})

    threads = [threading.Thread(target=bump, args=(s,)) for s in others]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    for s in others:
        s.close()
    assert state.get_docs("n")["n"] == {"count": 120}


def test_unknown_schemes_are_named():
    with pytest.raises(ConfigError, match="cache_url: unsupported URL scheme 'mongodb'"):
        open_cache("mongodb://x")
    with pytest.raises(ConfigError, match="state_url"):
        open_state("mysql://x")


def test_state_item_stats(state):
    state.add_engagement([Engagement("u1", "i1", 1, 1.0, 1), Engagement("u2", "i1", 1, 1.0, 2),
                          Engagement("u2", "i1", 3, 1.0, 3), Engagement("u2", "i2", 1, 1.0, 4)])
    assert state.item_stats("i1") == {1: 2, 3: 1}
    assert state.item_stats("nope") == {}

