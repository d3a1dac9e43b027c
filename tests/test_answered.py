"""An answered request's two events, built a column at a time (telemetry/answered.py): the
same tables the row path makes, the row path for a batch the columns cannot hold, and a
refused table kept as rows until the sink answers."""

from __future__ import annotations

import json

import pyarrow as pa
import pyarrow.parquet as pq

from novarank.telemetry.answered import Answered, event_ids, rows, tables
from novarank.telemetry.emitter import Emitter
from novarank.telemetry.schemas import CHUNK_ROWS, SCHEMAS
from novarank.telemetry.sinks import LakeWriter

DAY1 = 1_767_225_600_000  # 2026-01-01T00:00:00Z in ms


def _record(i: int, **changes) -> Answered:
    explore = None if i % 2 else {
        "window": [f"v{i}", "v9"], "epsilon": 0.1, "explored": i % 4 == 0,
        "ranked_at": 1_767_225_000 + i, "signals": [0.5, float(i)],
        **({"live_events": [1, 2], "live_items": ["v1", "v2"], "trending_id": f"t{i}",
            "weights": [1.0, 0.25], "forgotten": False} if i % 3 == 0 else {})}
    record = Answered(DAY1 + i, f"r{i}", f"u{i % 5}", "control" if i % 3 else "treatment",
                      "rel-1", "feed" if i % 4 else "search",
                      ["l1", "l2", "miss", "fallback"][i % 4], 10, 10 - i % 3, 0.25 * i,
                      None if i % 5 == 0 else "heavy", [f"v{i}", f"v{i + 1}"],
                      [0, 1] if i % 7 == 0 else None, explore)
    return record._replace(**changes)


def _without_ids(t: pa.Table) -> pa.Table:
    return t.drop_columns(["event_id"])


def test_the_columns_make_the_tables_the_rows_make():
    records = [_record(i) for i in range(2 * CHUNK_ROWS + 40)]  # three chunks
    built, expected = tables(records), rows(records)
    for kind in ("request", "ranking"):
        assert built[kind].schema.equals(SCHEMAS[kind])
        from_rows = pa.Table.from_pylist(expected[kind], schema=SCHEMAS[kind])
        assert _without_ids(built[kind]).equals(_without_ids(from_rows)), kind
    ids = built["request"]["event_id"].to_pylist() + built["ranking"]["event_id"].to_pylist()
    assert len(set(ids)) == 2 * len(records) and all(len(x) == 32 and int(x, 16) >= 0 for x in ids)
    # a batch without exploration or teams: those columns are all null
    plain = tables([_record(i, explore=None, teams=None) for i in range(3)])["ranking"]
    assert plain["window"].null_count == 3 and plain["teams"].null_count == 3


def test_event_ids_are_random_hex():
    a, b = event_ids(3).to_pylist(), event_ids(3).to_pylist()
    assert len(set(a + b)) == 6 and all(len(x) == 32 for x in a)
    assert event_ids(0).to_pylist() == []


def _lake(root, kind):
    return [r for p in sorted((root / "events" / kind).rglob("part-*.parquet"))
            for r in pq.read_table(p).to_pylist()]


def test_the_emitter_writes_answered_requests_to_the_lake_by_day(tmp_path):
    em = Emitter(LakeWriter(tmp_path), flush_s=60)
    for i in range(5):
        em.emit_answered(_record(i, ts=DAY1 + i * 43_200_000))  # three UTC days
    assert em.flush() == 10 and em.written == 10
    req, rank = _lake(tmp_path, "request"), _lake(tmp_path, "ranking")
    assert sorted(r["request_id"] for r in req) == sorted(r["request_id"] for r in rank) == [
        f"r{i}" for i in range(5)]
    days = sorted(p.parent.name for p in (tmp_path / "events" / "request").rglob("*.parquet"))
    assert days == ["event_date=2026-01-01", "event_date=2026-01-02", "event_date=2026-01-03"]
    ledgers = list((tmp_path / "events" / "ranking").glob("event_date=*/_ledger.jsonl"))
    assert sum(json.loads(ln)["rows"] for p in ledgers for ln in p.read_text().splitlines()) == 5
    em.close()


def test_a_value_the_columns_cannot_hold_costs_only_its_own_row(tmp_path):
    """A lone surrogate fails the whole columnar batch: the batch goes the row way, where
    the lake dead-letters that row alone and counts it lost."""
    lost: list[tuple[int, str]] = []
    em = Emitter(LakeWriter(tmp_path), flush_s=60, on_drop=lambda n, why: lost.append((n, why)))
    for i in range(4):
        em.emit_answered(_record(i, items=["\ud800"] if i == 2 else ["v1"]))
    assert em.flush() == 7
    assert len(_lake(tmp_path, "request")) == 4
    assert sorted(r["request_id"] for r in _lake(tmp_path, "ranking")) == ["r0", "r1", "r3"]
    assert lost == [(1, "dead_letter")] and em.dropped == 1
    em.close()


def test_a_conversion_that_fails_in_any_way_loses_nothing(tmp_path, monkeypatch):
    """Not only a value a column refuses: whatever the column build raises (here memory),
    the batch goes the row way instead of leaving the flush with the buffer taken."""
    from novarank.telemetry import answered

    def no_memory(records):
        raise MemoryError("arrow allocation")

    monkeypatch.setattr(answered, "tables", no_memory)
    em = Emitter(LakeWriter(tmp_path), flush_s=60)
    for i in range(3):
        em.emit_answered(_record(i))
    assert em.flush() == 6 and em.dropped == 0
    assert len(_lake(tmp_path, "request")) == len(_lake(tmp_path, "ranking")) == 3
    em.close()


class _Refuses:
    """A sink that takes tables and refuses the rankings until told to answer."""

    name = "flaky"

    def __init__(self) -> None:
        self.refuse, self.got = {"ranking"}, []

    def write(self, kind, rows):
        if kind in self.refuse:
            raise OSError("disk full")
        self.got += [(kind, r["request_id"], r["event_id"]) for r in rows]
        return len(rows)

    def write_table(self, kind, table):
        return self.write(kind, table.to_pylist())

    def close(self) -> None:
        pass


def test_a_refused_table_waits_as_rows_and_lands_once_with_its_event_ids():
    sink = _Refuses()
    em = Emitter(sink, flush_s=60)
    for i in range(3):
        em.emit_answered(_record(i))
    assert em.flush() == 3 and not em.sink_up  # the requests landed, the rankings wait
    assert em.lag_seconds() > 0
    sink.refuse = set()
    assert em.flush() == 3 and em.sink_up
    rankings = [(rid, eid) for kind, rid, eid in sink.got if kind == "ranking"]
    assert [rid for rid, _ in rankings] == ["r0", "r1", "r2"]
    assert len({eid for _, eid in rankings}) == 3
    assert em.flush() == 0 and em.dropped == 0
    em.close()


def test_a_full_buffer_counts_both_events_of_an_answered_request_lost():
    lost: list[tuple[int, str]] = []
    em = Emitter(_Refuses(), max_buffer=2, flush_s=60, on_drop=lambda n, why: lost.append((n, why)))
    for i in range(3):
        em.emit_answered(_record(i))
    assert lost == [(2, "buffer_full")] and em.dropped == 2
    em.close()
