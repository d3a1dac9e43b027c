"""One bad event never costs anyone else's: refused at the door with its field named, or
dead-lettered by the writer, while its batch-mates and flush-mates are written."""

from __future__ import annotations

import json
import time

import pyarrow.parquet as pq
import pytest
from fastapi.testclient import TestClient

from novarank.api import create_app
from novarank.config import ServiceSettings
from novarank.telemetry.emitter import Emitter
from novarank.telemetry.sinks import LakeWriter


@pytest.fixture(scope="module")
def release(small_release):
    path, _, item = small_release
    return path, item

def _rows(lake, kind):
    parts = sorted((lake / "events" / kind).glob("event_date=*/part-*.parquet"))
    return [r for p in parts for r in pq.read_table(p).to_pylist()]


def test_poison_events_are_refused_one_by_one_and_their_neighbours_kept(release, tmp_path):
    path, item = release
    s = ServiceSettings(release=path, state_url=f"sqlite:///{tmp_path}/s.db",
                        events_url=f"file://{tmp_path}/lake")
    good = {"type": "click", "user_id": "u1", "item_id": item, "position": 3}
    poison = [
        ({"type": "like", "user_id": "u1", "item_id": item, "value": float("nan")}, "value"),
        ({"type": "like", "user_id": "u1", "item_id": item, "value": float("inf")}, "value"),
        ({"type": "share", "user_id": "u1", "item_id": item, "value": 1e300}, "value"),
        ({"type": "click", "user_id": "\ud800bad", "item_id": item}, "user_id"),
        ({"type": "click", "user_id": "u2", "item_id": item, "request_id": "\udfff"},
         "request_id"),
        ({"type": "impression", "user_id": "u2", "item_id": item, "position": 2**40},
         "position"),
        ({"type": {"nested": 1}, "user_id": "u2", "item_id": item}, "type"),
        ({"type": "click", "user_id": "u2", "item_id": item, "ts": 2**70}, "ts"),
    ]
    batch = [good, *(p for p, _ in poison), {**good, "user_id": "u3"}]
    with TestClient(create_app(s)) as c:
        # a lone surrogate or NaN cannot travel as strict JSON: send the body as Python's
        # json module writes it (what a careless client sends)
        body = json.dumps(batch).encode()
        r = c.post("/v1/events", content=body, headers={"Content-Type": "application/json"})
        assert r.status_code == 200, r.text
        out = r.json()
        assert out["accepted"] == 2 and out["rejected"] == len(poison)
        fields = [res["field"] for res in out["results"][1:-1]]
        assert fields == [f for _, f in poison]
        history = c.get("/v1/users/u1/history").json()["live"]
        assert [e["type"] for e in history] == ["click"]  # refused ones left no trace
    clicks = _rows(tmp_path / "lake", "click")
    assert len(clicks) == 2 and {r["position"] for r in clicks} == {3}
    assert not _rows(tmp_path / "lake", "engagement")
    assert not (tmp_path / "lake" / "events" / "_deadletter").exists()


def test_a_row_the_lake_cannot_hold_is_dead_lettered_not_its_flush_mates(tmp_path):
    now = int(time.time() * 1000)
    rows = [{"event_id": f"e{i}", "ts": now, "received_ms": now, "request_id": f"r{i}",
             "item_id": "v1", "position": i} for i in range(5)]
    rows[2]["position"] = 2**40  # int32 in the schema
    rows[3]["item_id"] = "\ud800"  # not UTF-8
    w = LakeWriter(tmp_path)
    w.write("impression", rows)
    written = _rows(tmp_path, "impression")
    assert sorted(r["event_id"] for r in written) == ["e0", "e1", "e4"]
    assert w.dead_lettered == 2
    dead = [json.loads(line) for p in (tmp_path / "events" / "_deadletter" / "impression")
            .glob("part-*.jsonl") for line in p.read_text().splitlines()]
    assert sorted(d["row"]["event_id"] for d in dead) == ["e2", "e3"]
    assert all(d["reason"] for d in dead)
    # the ledger counts what was written, so reconciliation holds
    ledger = next((tmp_path / "events" / "impression").glob("event_date=*/_ledger.jsonl"))
    assert json.loads(ledger.read_text())["rows"] == 3


class _RefusesClicks:
    name = "flaky"

    def __init__(self) -> None:
        self.kept: dict[str, int] = {}
        self.rows: list[tuple[str, dict]] = []
        self.refuse = {"click"}

    def write(self, kind, rows):
        if kind in self.refuse or "*" in self.refuse:
            raise OSError("disk full")
        self.kept[kind] = self.kept.get(kind, 0) + len(rows)
        self.rows += [(kind, r) for r in rows]
        return len(rows)

    def close(self) -> None:
        pass


def test_a_refused_batch_waits_in_the_buffer_and_costs_no_other_kind():
    sink, lost = _RefusesClicks(), []
    em = Emitter(sink, release="r1", on_drop=lambda n, why: lost.append((n, why)), flush_s=60)
    for i in range(4):
        em.emit("impression", {"request_id": f"r{i}"})
    em.emit("click", {"request_id": "r0"})
    assert em.flush() == 4 and sink.kept == {"impression": 4}
    assert not em.sink_up and em.dropped == 0 and lost == []  # kept, not lost
    sink.refuse = set()  # the sink answers again
    assert em.flush() == 1 and sink.kept["click"] == 1 and em.sink_up
    em.close()


def test_an_outage_longer_than_the_buffer_is_counted_and_reported_when_the_sink_returns():
    sink, lost = _RefusesClicks(), []
    sink.refuse = {"*"}
    em = Emitter(sink, release="r1", max_buffer=10, flush_s=60,
                 on_drop=lambda n, why: lost.append((n, why)))
    for i in range(6):
        em.emit("request", {"request_id": f"a{i}"})
    em.flush()  # refused: all six wait
    for i in range(7):
        em.emit("request", {"request_id": f"b{i}"})  # room for four
    assert em.dropped == 3 and lost == [(1, "sink_down")] * 3
    em.flush()  # refused again: the drop report waits too, the oldest request gives way
    sink.refuse = set()
    assert em.flush() == 11 and em.sink_up  # 9 requests and two reports (3 lost, then 1)
    assert sink.kept == {"request": 9, "error": 2}
    assert em.dropped == 4 and sum(n for n, _ in lost) == 4
    em.close()


def test_an_outage_drops_the_oldest_events_whatever_their_kind():
    sink, lost = _RefusesClicks(), []
    sink.refuse = {"*"}
    em = Emitter(sink, release="r1", flush_s=60, on_drop=lambda n, why: lost.append(n))
    for i in range(3):  # emitted in turn: request, ranking, request, ranking, ...
        em.emit("request", {"request_id": f"q{i}"})
        em.emit("ranking", {"request_id": f"q{i}"})
    em.flush()  # refused: all six wait, in the order they came
    em.max_buffer = 4  # room for four of them at the next refusal
    em.flush()
    assert sum(lost) == 2
    sink.refuse = set()
    em.flush()
    kept = sorted((k, r["request_id"]) for k, r in sink.rows if k != "error")
    assert kept == [("ranking", "q1"), ("ranking", "q2"), ("request", "q1"),
                    ("request", "q2")]  # q0's request and ranking, the oldest, gave way
    em.close()


def test_rows_the_lake_dead_letters_are_counted_lost_by_the_emitter(tmp_path):
    """Dead-lettered rows are not in the lake: the emitter counts them as dropped."""
    lost: list[tuple[int, str]] = []
    em = Emitter(LakeWriter(tmp_path), release="r1", flush_s=60,
                 on_drop=lambda n, why: lost.append((n, why)))
    em.emit("impression", {"request_id": "r1", "item_id": "v1", "position": 1})
    em.emit("impression", {"request_id": "r2", "item_id": "v1", "position": 2**40})
    assert em.flush() == 1 and em.written == 1
    assert em.dropped == 1 and lost == [(1, "dead_letter")]
    em.close()


def test_a_bad_event_id_is_refused_not_replaced(release, tmp_path):
    path, item = release
    s = ServiceSettings(release=path, state_url=f"sqlite:///{tmp_path}/s.db",
                        events_url="null://")
    with TestClient(create_app(s)) as c:
        out = c.post("/v1/events", json=[
            {"type": "click", "user_id": "u1", "item_id": item, "event_id": "x" * 65},
            {"type": "click", "user_id": "u1", "item_id": item, "event_id": "ok-1"}]).json()
    assert out["accepted"] == 1 and out["results"][0]["field"] == "event_id"


def test_a_retry_after_a_crash_between_store_and_telemetry_reaches_the_lake(release, tmp_path):
    """Lake sink: the event is stored, then the process dies before its telemetry is
    buffered. The client's retry is a duplicate for the store, and still the lake's copy."""
    path, item = release
    s = ServiceSettings(release=path, state_url=f"sqlite:///{tmp_path}/s.db",
                        events_url=f"file://{tmp_path}/lake")
    event = [{"type": "like", "user_id": "u1", "item_id": item, "event_id": "crash-1"}]
    with TestClient(create_app(s), raise_server_exceptions=False) as c:
        service = c.app.state.service.engagement
        emit = service._emit_client_events

        def dies(_telemetry):
            raise RuntimeError("killed after the store")

        service._emit_client_events = dies
        assert c.post("/v1/events", json=event).status_code == 500
        service._emit_client_events = emit
        again = c.post("/v1/events", json=event).json()
        assert again["accepted"] == 1 and again["duplicates"] == 1  # stored once
    assert [r["event_id"] for r in _rows(tmp_path / "lake", "engagement")] == ["crash-1"]
