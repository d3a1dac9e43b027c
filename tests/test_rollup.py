"""Traffic through the real API -> lake -> rollup -> tiles; integrity caught on purpose."""

from __future__ import annotations

import shutil
from datetime import UTC, datetime

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from fastapi.testclient import TestClient

from novarank.analytics.rollup import rollup
from novarank.analytics.tiles import health, outcomes
from novarank.api import create_app
from novarank.config import ServiceSettings, TrainConfig
from novarank.data.synthetic import SyntheticConfig, generate
from novarank.release import save_release
from novarank.telemetry.sinks import LakeWriter
from novarank.training import fit_model

SPLIT = {"control": 50.0, "treatment_a": 50.0}


@pytest.fixture(scope="module")
def day_of_traffic(tmp_path_factory):
    """A clean run: 60 users' feeds, impressions of what was shown, some clicks and likes."""
    root = tmp_path_factory.mktemp("lake")
    d = generate(SyntheticConfig(users=200, items=150, events=10_000, seed=4))
    save_release(fit_model(d.dataset, TrainConfig(als_iterations=2, als_factors=8, tune=False)),
                 root / "rel")
    s = ServiceSettings(release=root / "rel", state_url=f"sqlite:///{root}/s.db",
                        events_url=f"file://{root}/lake", split=SPLIT,
                        variant_weights={"treatment_a": {"trending": 1.0}})
    counts = {"feeds": 0, "impressions": 0, "clicks": 0, "likes": 0, "bad": 0}
    with TestClient(create_app(s)) as c:
        for n in range(60):
            feed = c.get(f"/v1/users/u{n}/feed", params={"k": 5}).json()
            counts["feeds"] += 1
            events = [{"type": "impression", "user_id": f"u{n}", "item_id": it["item_id"],
                       "request_id": feed["request_id"], "position": p}
                      for p, it in enumerate(feed["items"])]
            if n % 3 == 0:
                events.append({"type": "click", "user_id": f"u{n}",
                               "item_id": feed["items"][0]["item_id"],
                               "request_id": feed["request_id"]})
                counts["clicks"] += 1
            if n % 5 == 0:
                events.append({"type": "like", "user_id": f"u{n}",
                               "item_id": feed["items"][1]["item_id"],
                               "request_id": feed["request_id"]})
                counts["likes"] += 1
            counts["impressions"] += len(feed["items"])
            assert c.post("/v1/events", json=events).json()["rejected"] == 0
        assert c.get("/v1/users/u1/feed", params={"k": 0}).status_code == 422
        counts["bad"] += 1
    date = datetime.now(UTC).strftime("%Y-%m-%d")
    return root / "lake", date, counts


def test_clean_day_has_exact_counts_and_no_orphans(day_of_traffic):
    lake, date, counts = day_of_traffic
    res = rollup(lake, date, catalog_items=150)
    assert res.reconciliation["ok"], res.reconciliation
    integ = {r["type"]: r for r in res.tables["daily_integrity"]}
    assert integ["request"]["events"] == counts["feeds"]
    assert integ["impression"]["events"] == counts["impressions"]
    assert integ["click"]["events"] == counts["clicks"]
    assert all(r["orphans"] == 0 and r["duplicates"] == 0 for r in integ.values())
    total = res.total("daily_outcomes")
    assert (total["impressions"], total["clicks"], total["likes"]) == (
        counts["impressions"], counts["clicks"], counts["likes"])
    feed = res.total("daily_requests", level="route", route="feed")
    assert feed["requests"] == counts["feeds"] and feed["p95_ms"] > 0
    errors = res.tables["daily_errors"]
    assert sum(e["errors"] for e in errors if e["status"] == 422) == counts["bad"]
    assert not res.bad_files


def test_rerunning_a_day_is_idempotent(day_of_traffic):
    lake, date, _ = day_of_traffic
    first = rollup(lake, date).tables
    second = rollup(lake, date).tables
    assert first == second
    out = lake / "rollups" / "daily_requests" / f"event_date={date}"
    assert [p.name for p in out.iterdir()] == ["data.parquet"]


def test_tiles_read_the_rollup(day_of_traffic):
    lake, date, counts = day_of_traffic
    summary = rollup(lake, date, catalog_items=150).to_dict()
    h = health(summary)
    by = {m["metric"]: m for m in h["metrics"]}
    assert by["coverage"]["value"] == 1.0 and by["coverage"]["status"] == "ok"
    assert by["error_rate"]["value"] == 0.0  # a 422 is the client's error, not the server's
    o = outcomes(summary, SPLIT)
    ctr = next(m for m in o["metrics"] if m["metric"] == "ctr")
    assert ctr["value"] == pytest.approx(counts["clicks"] / counts["impressions"])
    assert sum(o["allocation"].values()) == pytest.approx(1.0)
    assert 0 < o["catalog_coverage"] <= 1


def test_injected_orphans_duplicates_and_bad_files_are_counted(day_of_traffic, tmp_path):
    lake, date, counts = day_of_traffic
    copy = tmp_path / "lake"
    shutil.copytree(lake, copy)
    ts = int(datetime.strptime(date, "%Y-%m-%d").replace(tzinfo=UTC).timestamp() * 1000) + 1
    LakeWriter(copy).write("click", [
        {"event_id": f"orphan{i}", "ts": ts, "received_ms": ts, "request_id": f"nope{i}",
         "item_id": "v1"} for i in range(7)])
    part = next((copy / "events" / "impression" / f"event_date={date}").glob("part-*.parquet"))
    n_dup = pq.read_metadata(part).num_rows
    shutil.copy(part, part.with_name("part-9999999999999-dup.parquet"))
    truncated = part.with_name("part-9999999999999-trunc.parquet")
    truncated.write_bytes(part.read_bytes()[:200])
    wrong = part.with_name("part-9999999999999-wrong.parquet")
    pq.write_table(pa.table({"event_id": [1, 2], "item_id": ["a", "b"]}), wrong)
    res = rollup(copy, date)
    integ = {r["type"]: r for r in res.tables["daily_integrity"]}
    assert integ["click"]["orphans"] == 7
    assert integ["click"]["events"] == counts["clicks"] + 7
    assert integ["impression"]["duplicates"] == n_dup
    assert integ["impression"]["events"] == counts["impressions"]  # never double counted
    bad = {b["file"].rsplit("/", 1)[1]: b["reason"] for b in res.bad_files}
    assert "unreadable" in bad["part-9999999999999-trunc.parquet"]
    assert bad["part-9999999999999-wrong.parquet"] == "column 'event_id' is int64, expected string"
    assert res.reconciliation["ok"]


def test_rollup_and_tiles_commands(day_of_traffic):
    import json as _json

    from typer.testing import CliRunner

    from novarank.cli.main import app

    lake, date, counts = day_of_traffic
    runner = CliRunner()
    res = runner.invoke(app, ["rollup", "--lake", str(lake), "--date", date])
    assert res.exit_code == 0, res.output
    assert "exact" in res.output
    res = runner.invoke(app, ["tiles", "--lake", str(lake), "--date", date, "--json",
                              "--split", '{"control": 50, "treatment_a": 50}'])
    assert res.exit_code == 0, res.output
    out = _json.loads(res.output)
    assert out["health"]["requests"] == counts["feeds"]
    assert {m["metric"] for m in out["outcomes"]["metrics"]} == {
        "ctr", "allocation_srm_p", "allocation_max_deviation", "recall", "recall_lift_low",
        "ctr_lift_treatment_a", "cuped_lift_treatment_a"}  # the experiment, beside them
    res = runner.invoke(app, ["rollup", "--lake", str(lake), "--date", "22/11/2026"])
    assert res.exit_code == 2 and "YYYY-MM-DD" in res.output


def test_summary_json_keeps_numbers_numeric(day_of_traffic):
    from novarank.analytics.rollup import load_summary

    lake, date, _ = day_of_traffic
    rollup(lake, date)
    summary = load_summary(lake, date)
    for table in summary["tables"].values():
        for row in table:
            for key, value in row.items():
                assert not (isinstance(value, str) and value.replace(".", "").isdigit()), key


def _day_ms(date: str) -> int:
    return int(datetime.strptime(date, "%Y-%m-%d").replace(tzinfo=UTC).timestamp() * 1000) + 1


def test_null_keyed_groups_are_not_mistaken_for_totals(day_of_traffic, tmp_path):
    """Events with no variant or release are a real group; the totals still add up."""
    lake, date, counts = day_of_traffic
    copy = tmp_path / "lake"
    shutil.copytree(lake, copy)
    ts = _day_ms(date)
    LakeWriter(copy).write("click", [
        {"event_id": f"anon{i}", "ts": ts, "received_ms": ts, "request_id": f"x{i}",
         "item_id": "v1"} for i in range(20)])
    LakeWriter(copy).write("request", [
        {"event_id": f"anonreq{i}", "ts": ts, "received_ms": ts, "request_id": f"y{i}",
         "route": "feed", "status": 200, "k": 5, "returned": 5, "latency_ms": 1.0}
        for i in range(4)])
    res = rollup(copy, date)
    assert res.reconciliation["ok"], res.reconciliation
    out_all = [r for r in res.tables["daily_outcomes"] if r["level"] == "all"]
    assert len(out_all) == 1 and out_all[0]["clicks"] == counts["clicks"] + 20
    null_group = next(r for r in res.tables["daily_outcomes"]
                      if r["level"] == "group" and r["variant"] is None)
    assert null_group["clicks"] == 20
    req_all = next(r for r in res.tables["daily_requests"] if r["level"] == "all")
    assert req_all["requests"] == counts["feeds"] + 4
    feed = next(r for r in res.tables["daily_requests"]
                if r["level"] == "route" and r["route"] == "feed")
    assert feed["requests"] == counts["feeds"] + 4
    # whatever order the engine returns rows in, the tiles pick the same totals
    shuffled = {**res.to_dict(), "tables": {k: list(reversed(v))
                                            for k, v in res.tables.items()}}
    assert health(shuffled) == health(res.to_dict())
    assert outcomes(shuffled, SPLIT)["metrics"] == outcomes(res.to_dict(), SPLIT)["metrics"]


def test_a_null_request_id_does_not_hide_orphans(day_of_traffic, tmp_path):
    lake, date, _ = day_of_traffic
    copy = tmp_path / "lake"
    shutil.copytree(lake, copy)
    ts = _day_ms(date)
    w = LakeWriter(copy)
    w.write("request", [{"event_id": "nullreq", "ts": ts, "received_ms": ts,
                         "request_id": None, "route": "feed", "status": 200}])
    w.write("ranking", [{"event_id": "nullrank", "ts": ts, "received_ms": ts,
                         "request_id": None, "items": []}])
    w.write("click", [{"event_id": f"o{i}", "ts": ts, "received_ms": ts,
                       "request_id": f"gone{i}", "item_id": "v1"} for i in range(3)])
    integ = {r["type"]: r for r in rollup(copy, date).tables["daily_integrity"]}
    assert integ["click"]["orphans"] == 3


def test_a_part_lost_after_it_was_written_fails_reconciliation(day_of_traffic, tmp_path):
    from typer.testing import CliRunner

    from novarank.cli.main import app

    lake, date, _ = day_of_traffic
    copy = tmp_path / "lake"
    shutil.copytree(lake, copy)
    part = next((copy / "events" / "click" / f"event_date={date}").glob("part-*.parquet"))
    part.unlink()
    res = rollup(copy, date)
    assert not res.reconciliation["ok"]
    assert any(part.name in p and "missing" in p for p in res.reconciliation["problems"])
    cli = CliRunner().invoke(app, ["rollup", "--lake", str(copy), "--date", date])
    assert cli.exit_code == 1 and "MISMATCH" in cli.output and part.name in cli.output


def test_a_part_whose_rows_changed_fails_reconciliation(day_of_traffic, tmp_path):
    lake, date, _ = day_of_traffic
    copy = tmp_path / "lake"
    shutil.copytree(lake, copy)
    part = next((copy / "events" / "impression" / f"event_date={date}").glob("part-*.parquet"))
    t = pq.read_table(part)
    pq.write_table(t.slice(0, t.num_rows - 1), part)
    res = rollup(copy, date)
    assert not res.reconciliation["ok"]
    assert any(f"part {part.name} holds {t.num_rows - 1} rows" in p
               for p in res.reconciliation["problems"])


def test_a_rollup_that_counts_rows_twice_fails_reconciliation(day_of_traffic, tmp_path):
    """The check does not trust the SQL: a rollup that double counts a part is caught."""
    from novarank.analytics.rollup import DuckEngine

    lake, date, _ = day_of_traffic

    class Doubling(DuckEngine):
        def register(self, found, since_ms=None):
            super().register(found, since_ms)
            self.con.execute("INSERT INTO click SELECT * FROM click_raw")

    res = rollup(lake, date, engine=Doubling())
    assert not res.reconciliation["ok"]
    assert any(p.startswith("click: rolled up") for p in res.reconciliation["problems"])


def test_tiles_print_units_with_their_values(day_of_traffic):
    lake, date, _ = day_of_traffic
    p95 = next(m for m in health(rollup(lake, date).to_dict())["metrics"]
               if m["metric"] == "p95_ms")
    assert p95["shown"].endswith(" ms") and p95["objective"] == "< 50 ms"


def test_a_window_counts_only_what_happened_after_it_opened(day_of_traffic, tmp_path):
    from novarank.analytics.rollup import window

    lake, date, counts = day_of_traffic
    copy = tmp_path / "lake"
    shutil.copytree(lake, copy)
    import time

    late = int(time.time() * 1000) + 1  # after all of the fixture's traffic, the same day
    LakeWriter(copy).write("request", [
        {"event_id": f"late{i}", "ts": late, "received_ms": late, "request_id": f"z{i}",
         "route": "feed", "status": 200, "cache": "miss", "k": 5, "returned": 5,
         "latency_ms": 1.0, "variant": "control", "release": "r"} for i in range(9)])
    whole = rollup(copy, date)
    part = window(copy, date, late)
    total = next(r for r in part["tables"]["daily_requests"] if r["level"] == "all")
    assert total["requests"] == 9 and total["cache_hits"] == 0
    full = next(r for r in whole.tables["daily_requests"] if r["level"] == "all")
    assert full["requests"] == counts["feeds"] + 9
    assert health(part)["requests"] == 9


def test_a_part_from_before_a_column_was_added_is_still_read(tmp_path):
    """`cohort` joined the request schema as a nullable column; older parts lack it and
    are read (as null), while a part missing an original column is still refused."""
    from novarank.analytics.lake import scan
    from novarank.telemetry.schemas import SCHEMAS

    date = "2026-12-01"
    ts = int(datetime.strptime(date, "%Y-%m-%d").replace(tzinfo=UTC).timestamp() * 1000)
    folder = tmp_path / "events" / "request" / f"event_date={date}"
    folder.mkdir(parents=True)
    schema = SCHEMAS["request"]
    old = pa.schema([f for f in schema if f.name != "cohort"])
    pq.write_table(pa.Table.from_pylist([{"event_id": "e1", "ts": ts, "route": "feed"}],
                                        schema=old), folder / "part-1-old.parquet")
    broken = pa.schema([f for f in schema if f.name != "route"])
    pq.write_table(pa.Table.from_pylist([{"event_id": "e2", "ts": ts}], schema=broken),
                   folder / "part-2-broken.parquet")
    found = scan(tmp_path, date)
    assert [p.name for p in found.files["request"]] == ["part-1-old.parquet"]
    assert [b["reason"] for b in found.bad] == ["missing column 'route'"]
