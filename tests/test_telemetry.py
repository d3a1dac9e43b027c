"""Emitter, both sinks (the lake and a real Redis Stream), and the ingester's guarantees."""

from __future__ import annotations

import time

import pyarrow.parquet as pq
import pytest

from novarank.telemetry.emitter import Emitter
from novarank.telemetry.ingest import Ingester
from novarank.telemetry.schemas import CHUNK_ROWS, SCHEMAS, table, user_key
from novarank.telemetry.sinks import LakeWriter, StreamWriter
from tests.services import redis_url, unique_prefix

DAY1 = 1_767_225_600_000  # 2026-01-01T00:00:00Z in ms


def _lake_rows(root, kind):
    return [r for p in sorted((root / "events" / kind).rglob("part-*.parquet"))
            for r in pq.read_table(p).to_pylist()]


def test_lake_writer_partitions_by_day_atomically(tmp_path):
    lake = LakeWriter(tmp_path)
    lake.write("click", [{"event_id": "a", "ts": DAY1, "item_id": "i1"},
                         {"event_id": "b", "ts": DAY1 + 86_400_000, "item_id": "i2"}])
    parts = sorted(p.relative_to(tmp_path).as_posix() for p in tmp_path.rglob("*.parquet"))
    assert [p.rsplit("/", 1)[0] for p in parts] == ["events/click/event_date=2026-01-01",
                                                   "events/click/event_date=2026-01-02"]
    assert not list(tmp_path.rglob("*.tmp"))
    table = pq.read_table(tmp_path / parts[0])
    assert table.schema.equals(SCHEMAS["click"])  # exactly the versioned schema
    assert table.to_pylist()[0]["item_id"] == "i1"


def test_emitter_never_blocks_counts_drops_and_reports_them(tmp_path):
    dropped = []
    em = Emitter(LakeWriter(tmp_path), batch=10_000, max_buffer=5, flush_s=60,
                 on_drop=lambda n, why: dropped.append(n) if why == "buffer_full" else None)
    t0 = time.perf_counter()
    for i in range(8):
        em.emit("request", {"request_id": f"r{i}", "ts": DAY1 + i})
    assert time.perf_counter() - t0 < 0.05
    assert em.dropped == 3 and sum(dropped) == 3
    em.close()  # flushes the 5 kept plus one error event that reports the 3 lost
    assert len(_lake_rows(tmp_path, "request")) == 5
    err = _lake_rows(tmp_path, "error")
    assert len(err) == 1 and err[0]["dropped"] == 3 and err[0]["code"] == "telemetry_dropped"


def test_emitter_flushes_by_size_in_the_background(tmp_path):
    em = Emitter(LakeWriter(tmp_path), batch=3, flush_s=60)
    for i in range(3):
        em.emit("click", {"ts": DAY1 + i, "item_id": "x"})
    deadline = time.monotonic() + 5
    while em.written < 3 and time.monotonic() < deadline:
        time.sleep(0.01)
    assert em.written == 3
    rows = _lake_rows(tmp_path, "click")
    assert len({r["event_id"] for r in rows}) == 3 and all(r["schema_version"] == 1 for r in rows)
    em.close()


def test_a_batch_converts_a_chunk_at_a_time_into_the_same_table():
    """Chunks keep another thread's wait for the GIL short; the table is the same."""
    import pyarrow as pa

    rows = [{"event_id": f"e{i}", "ts": i, "request_id": f"r{i}", "items": [f"v{i}", "v0"],
             "teams": [0, 1] if i % 3 else None} for i in range(2 * CHUNK_ROWS + 7)]
    got = table("ranking", rows)
    assert got.num_rows == len(rows) and got.schema == SCHEMAS["ranking"]
    assert got.equals(pa.Table.from_pylist(rows, schema=SCHEMAS["ranking"]))


def test_user_keys_are_stable_and_not_the_id():
    assert user_key("alice") == user_key("alice") != user_key("bob")
    assert "alice" not in user_key("alice")


@pytest.fixture()
def stream():
    url = redis_url()
    name = unique_prefix() + "telemetry"
    yield url, name
    import redis

    redis.Redis.from_url(url).delete(name)


@pytest.mark.integration
def test_stream_sink_and_ingester_land_every_event_once(stream, tmp_path):
    url, name = stream
    em = Emitter(StreamWriter(url, name), batch=50, flush_s=0.05)
    for i in range(120):
        em.emit("impression", {"ts": DAY1 + i, "request_id": f"r{i}", "item_id": f"i{i}"})
    em.close()
    ing = Ingester(url, LakeWriter(tmp_path), stream=name, group="g1")
    stats = ing.run(until_idle=True)
    assert stats.events == 120 and ing.pending() == 0
    rows = _lake_rows(tmp_path, "impression")
    assert len(rows) == 120 and len({r["event_id"] for r in rows}) == 120


@pytest.mark.integration
def test_a_dead_consumers_messages_are_claimed_not_lost(stream, tmp_path):
    url, name = stream
    sink = StreamWriter(url, name)
    sink.write("click", [{"event_id": f"e{i}", "ts": DAY1 + i, "item_id": "x"}
                         for i in range(40)])
    # consumer A reads everything, then dies before writing or acknowledging
    dead = Ingester(url, LakeWriter(tmp_path / "never"), stream=name, group="g2",
                    consumer="dead")
    dead._r.xreadgroup("g2", "dead", {name: ">"}, count=100)
    assert dead.pending() > 0
    survivor = Ingester(url, LakeWriter(tmp_path), stream=name, group="g2",
                        consumer="survivor", claim_idle_ms=0)
    survivor.run(until_idle=True)
    assert survivor.stats.claimed > 0 and survivor.pending() == 0
    assert sorted(r["event_id"] for r in _lake_rows(tmp_path, "click")) == \
        sorted(f"e{i}" for i in range(40))


KILLED_AFTER_WRITE = """
import os, signal, sys
from novarank.telemetry.ingest import Ingester
from novarank.telemetry.sinks import LakeWriter
url, name, lake = sys.argv[1:]
ing = Ingester(url, LakeWriter(lake), stream=name, group="g5", consumer="first")
ing._r.xack = lambda *_: os.kill(os.getpid(), signal.SIGKILL)  # parts renamed, then gone
ing.run(until_idle=True)
"""


@pytest.mark.integration
def test_an_ingester_killed_between_write_and_ack_leaves_no_duplicate(stream, tmp_path):
    import subprocess
    import sys

    from novarank.analytics.lake import scan

    url, name = stream
    sink = StreamWriter(url, name)
    for b in range(3):
        sink.write("click", [{"event_id": f"k{b}-{i}", "ts": DAY1 + i, "item_id": "x"}
                             for i in range(30)])
    killed = subprocess.run([sys.executable, "-c", KILLED_AFTER_WRITE, url, name,
                             str(tmp_path)], timeout=60)
    assert killed.returncode == -9  # SIGKILL, between the write and the ack
    assert len(_lake_rows(tmp_path, "click")) == 90
    # a new process (an empty dedupe window) claims the batch and writes it again
    second = Ingester(url, LakeWriter(tmp_path), stream=name, group="g5", consumer="second",
                      claim_idle_ms=0)
    assert second.pending() == 90 // 30  # three messages, never acknowledged
    second.run(until_idle=True)
    assert second.stats.claimed == 3 and second.pending() == 0
    ids = [r["event_id"] for r in _lake_rows(tmp_path, "click")]
    assert len(ids) == 90 and len(set(ids)) == 90  # 0 duplicate raw rows, 0 missing
    assert sum(scan(tmp_path, "2026-01-01").ledgers["click"].values()) == 90  # as written


@pytest.mark.integration
def test_redelivered_duplicates_are_dropped_by_event_id(stream, tmp_path):
    url, name = stream
    sink = StreamWriter(url, name)
    rows = [{"event_id": f"d{i}", "ts": DAY1 + i, "kind": "like", "item_id": "x"}
            for i in range(10)]
    sink.write("engagement", rows)
    sink.write("engagement", rows[:4])  # a replica retried part of a batch
    ing = Ingester(url, LakeWriter(tmp_path), stream=name, group="g3")
    ing.run(until_idle=True)
    assert ing.stats.duplicates == 4
    assert len(_lake_rows(tmp_path, "engagement")) == 10


@pytest.mark.integration
def test_service_on_the_stream_sink_end_to_end(stream, tmp_path):
    """Acknowledged client events are in the stream before POST /v1/events answers (a
    replica killed right after loses none); ingest + rollup then see a clean day."""
    from datetime import UTC, datetime

    from fastapi.testclient import TestClient

    from novarank.analytics.rollup import rollup
    from novarank.api import create_app
    from novarank.config import ServiceSettings, TrainConfig
    from novarank.data.synthetic import SyntheticConfig, generate
    from novarank.release import save_release
    from novarank.training import fit_model

    url, name = stream
    d = generate(SyntheticConfig(users=100, items=80, events=5_000, seed=8))
    save_release(fit_model(d.dataset, TrainConfig(als_iterations=2, als_factors=8, tune=False)),
                 tmp_path / "rel")
    prefix = name[: -len("telemetry")]
    s = ServiceSettings(release=tmp_path / "rel", state_url=f"sqlite:///{tmp_path}/s.db",
                        events_url=url, key_prefix=prefix)
    lake = tmp_path / "lake"
    with TestClient(create_app(s)) as c:
        feed = c.get("/v1/users/u1/feed", params={"k": 4}).json()
        batch = [{"type": "impression", "user_id": "u1", "item_id": it["item_id"],
                  "request_id": feed["request_id"]} for it in feed["items"]]
        batch.append({"type": "like", "user_id": "u1", "item_id": feed["items"][0]["item_id"],
                      "event_id": "like-once"})
        assert c.post("/v1/events", json=batch).json()["accepted"] == 5
        retry = c.post("/v1/events", json=batch).json()  # the client lost the first answer
        assert retry["accepted"] == 5 and retry["duplicates"] == 1  # the like: in the store
        assert len(c.get("/v1/users/u1/history").json()["live"]) == 1
        # still serving, buffers not flushed: the client events must already be in Redis
        early = Ingester(url, LakeWriter(lake), stream=name, group="early")
        early.run(until_idle=True)
        assert early.stats.by_kind.get("impression") == 4  # the retry's copies: dropped
        assert early.stats.by_kind.get("engagement") == 1 and early.stats.duplicates == 5
    late = Ingester(url, LakeWriter(lake), stream=name, group="early")
    late.run(until_idle=True)  # request/ranking flushed on shutdown at the latest
    for kind in ("request", "ranking"):  # (the 1 s flush may beat the early ingester)
        assert early.stats.by_kind.get(kind, 0) + late.stats.by_kind.get(kind, 0) == 1, kind
    res = rollup(lake, datetime.now(UTC).strftime("%Y-%m-%d"))
    integ = {r["type"]: r for r in res.tables["daily_integrity"]}
    assert integ["impression"]["events"] == 4 and integ["impression"]["orphans"] == 0
    assert res.reconciliation["ok"]
