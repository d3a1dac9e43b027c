"""The Spark engine (local[2], the machine's Java) against the local engine: the same
artifacts, the same split, the same daily tables; a release that serves."""

from __future__ import annotations

import random
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from novarank.analytics.lake import partition
from novarank.analytics.rollup import rollup, table_differences
from novarank.config import TrainConfig
from novarank.data.dataset import Dataset
from novarank.data.synthetic import SyntheticConfig, generate
from novarank.errors import DataError
from novarank.evaluation.split import temporal_split
from novarank.telemetry.schemas import SCHEMAS
from novarank.telemetry.sinks import LakeWriter
from novarank.training import fit_model

pytest.importorskip("pyspark", reason="the Spark engine needs the spark extra")
pytestmark = pytest.mark.slow

SMALL = TrainConfig(als_factors=8, als_iterations=3, tune=False, neighbours=30)


@pytest.fixture(scope="module")
def spark():
    from novarank.spark.session import spark_session

    session = spark_session("local[2]")
    yield session
    session.stop()


@pytest.fixture(scope="module")
def small() -> Dataset:
    return generate(SyntheticConfig(users=300, items=200, events=12_000, seed=3)).dataset


def test_no_java_is_a_clear_error(monkeypatch):
    from novarank.errors import ConfigError
    from novarank.spark.session import spark_session

    monkeypatch.delenv("JAVA_HOME", raising=False)
    monkeypatch.setenv("PATH", "/nonexistent")
    with pytest.raises(ConfigError, match="needs Java 17"):
        spark_session("local[1]")


def test_spark_fit_computes_what_the_local_engine_computes(spark, small):
    from novarank.spark.fit import fit_model as spark_fit
    from novarank.spark.interactions import from_dataset

    local = fit_model(small, SMALL)
    remote = spark_fit(from_dataset(spark, small), SMALL)
    for name in ("hist_indptr", "hist_items", "hist_ts"):
        np.testing.assert_array_equal(getattr(remote, name), getattr(local, name), err_msg=name)
    for name in ("hist_weight", "popularity", "trending", "quality"):
        np.testing.assert_allclose(getattr(remote, name), getattr(local, name), rtol=1e-5,
                                   atol=1e-6, err_msg=name)
    # every history is under the cap, so the neighbour lists are the same lists
    np.testing.assert_allclose(remote.item_item.toarray(), local.item_item.toarray(),
                               rtol=1e-5, atol=1e-7)
    assert remote.als_users.shape == local.als_users.shape
    assert remote.als_items.shape == local.als_items.shape
    assert np.abs(remote.als_items[local.popularity > 0]).sum(1).min() > 0
    assert remote.data_fingerprint == small.fingerprint()
    assert remote.metrics["engine"]["name"] == "spark"


def test_the_history_cap_bounds_the_self_join(spark, small):
    """A cap below the longest history changes the co-occurrences: the cap is applied."""
    from novarank.spark.fit import SparkFitConfig
    from novarank.spark.fit import fit_model as spark_fit
    from novarank.spark.interactions import from_dataset

    capped = spark_fit(from_dataset(spark, small), SMALL, SparkFitConfig(history_cap=3))
    local = fit_model(small, SMALL)
    assert capped.item_item.nnz < local.item_item.nnz


def test_the_spark_split_holds_out_what_the_local_split_does(spark, small):
    from novarank.spark.fit import temporal_split as spark_split
    from novarank.spark.interactions import from_dataset

    local = temporal_split(small, 0.2)
    remote = spark_split(from_dataset(spark, small), 0.2)
    assert remote.train.frame.count() == local.train.n_events
    assert remote.truth.keys() == local.truth.keys()
    for u, items in local.truth.items():
        np.testing.assert_array_equal(remote.truth[u], items)


def _generic(path, rows):
    pq.write_table(pa.Table.from_pylist(rows), path)
    return str(path)


def test_parquet_read_by_spark_names_a_bad_event_and_fingerprints_content(spark, tmp_path):
    from novarank.spark.interactions import from_parquet

    rows = [{"user_id": f"u{i % 7}", "item_id": f"i{i % 11}", "event": "click",
             "value": 1.0, "ts": 1_700_000_000 + i} for i in range(60)]
    a = from_parquet(spark, _generic(tmp_path / "a.parquet", rows))
    b = from_parquet(spark, _generic(tmp_path / "b.parquet", list(reversed(rows))))
    assert (a.n_users, a.n_items, a.frame.count()) == (7, 11, 60)
    assert a.fingerprint == b.fingerprint  # same content, other order
    c = from_parquet(spark, _generic(tmp_path / "c.parquet", rows[1:]))
    assert c.fingerprint != a.fingerprint
    bad = [*rows, {**rows[0], "event": "purchase"}]
    with pytest.raises(DataError, match="unknown event 'PURCHASE'") as err:
        from_parquet(spark, _generic(tmp_path / "d.parquet", bad))
    assert err.value.field == "event"


# ---- rollups ----------------------------------------------------------------------------
DAY_MS = 1_764_547_200_000  # 2025-12-01T00:00Z


def _lake(root: Path) -> str:
    """One day with what a rollup must get right: duplicates (first receipt wins), orphans,
    a NULL request_id, late arrivals, NULL variants and releases, a part written before the
    `cohort` column, an unreadable part, errors with and without dropped counts."""
    rnd = random.Random(5)
    w = LakeWriter(root)
    requests, rankings = [], []
    for n in range(300):
        ts = DAY_MS + n * 1000
        variant = rnd.choice(["control", "treatment_a", None])
        release = rnd.choice(["r1", "r2", None])
        common = {"event_id": f"q{n}", "ts": ts, "received_ms": ts + rnd.choice([5, 4_000_000]),
                  "request_id": f"r{n}", "user_key": f"k{n % 40}", "variant": variant,
                  "release": release}
        requests.append({**common, "route": rnd.choice(["feed", "search", "trending"]),
                         "status": 200, "cache": rnd.choice(["l1", "l2", "miss", None]),
                         "k": 10, "returned": rnd.randint(0, 10),
                         "latency_ms": rnd.random() * 40, "fallback": rnd.random() < 0.1,
                         "cohort": rnd.choice(["new", "heavy", None])})
        rankings.append({**common, "event_id": f"g{n}", "items": [f"i{n % 9}"]})
    w.write("request", requests)
    w.write("request", [{**r, "received_ms": r["received_ms"] + 99} for r in requests[:20]])
    w.write("ranking", rankings[:280])  # 20 requests with no ranking: their events orphan
    shown, clicks, engaged = [], [], []
    for n in range(300):
        base = {"ts": DAY_MS + n * 1000 + 10, "received_ms": DAY_MS + n * 1000 + 20,
                "request_id": f"r{n}" if n % 50 else None, "user_key": f"k{n % 40}",
                "variant": requests[n]["variant"], "release": requests[n]["release"]}
        for p in range(3):
            shown.append({**base, "event_id": f"m{n}.{p}", "item_id": f"i{(n + p) % 17}",
                          "position": p})
        if n % 3 == 0:
            clicks.append({**base, "event_id": f"c{n}", "item_id": f"i{n % 17}", "position": 0})
        if n % 4 == 0:
            kind = ["watch", "like", "share", "skip"][n % 16 // 4]
            engaged.append({**base, "event_id": f"e{n}", "kind": kind, "item_id": f"i{n % 5}",
                            "value": rnd.random() if kind == "watch" else None})
    clicks.append({**clicks[0], "event_id": "c-ghost", "request_id": "nowhere"})
    w.write("impression", shown)
    w.write("click", clicks)
    w.write("click", clicks[:5])  # re-sent
    w.write("engagement", engaged)
    w.write("error", [{"event_id": f"x{n}", "ts": DAY_MS + n, "received_ms": DAY_MS + n,
                       "request_id": f"r{n}", "route": "events", "status": 422,
                       "code": "invalid", "message": "bad", "dropped": n % 3 or None}
                      for n in range(12)])
    date = "2025-12-01"
    old = SCHEMAS["request"].remove(SCHEMAS["request"].get_field_index("cohort"))
    legacy = [{k: v for k, v in r.items() if k != "cohort"} | {"event_id": f"old{i}"}
              for i, r in enumerate(requests[:15])]
    pq.write_table(pa.Table.from_pylist(legacy, schema=old),
                   partition(root, "request", date) / "part-legacy.parquet")
    (partition(root, "click", date) / "part-broken.parquet").write_bytes(b"not parquet")
    return date


def test_spark_rollup_writes_the_tables_duckdb_writes(spark, tmp_path):
    from novarank.spark.rollup import SparkSqlEngine

    date = _lake(tmp_path)
    duck = rollup(tmp_path, date)
    remote = rollup(tmp_path, date, engine=SparkSqlEngine(spark))
    assert duck.reconciliation["ok"] and remote.reconciliation["ok"]
    assert remote.engine == "spark" and duck.engine == "duckdb"
    assert remote.bad_files == duck.bad_files and len(duck.bad_files) == 1
    assert remote.raw_events == duck.raw_events
    assert table_differences(duck.tables, remote.tables) == []
    integrity = {r["type"]: r for r in duck.tables["daily_integrity"]}
    assert integrity["request"]["duplicates"] == 20
    assert integrity["click"]["orphans"] > 0 and integrity["request"]["late"] > 0
    # the Spark run wrote the same files, read back equal
    for out in remote.outputs:
        assert pq.read_table(out).num_rows == len(
            remote.tables[out.split("/rollups/")[1].split("/")[0]])


def test_a_table_that_differs_is_named(spark, tmp_path):
    """The comparison can fail: one changed count, one missing row, one far float."""
    date = _lake(tmp_path)
    tables = rollup(tmp_path, date).tables
    changed = {k: [dict(r) for r in v] for k, v in tables.items()}
    changed["daily_errors"][0]["errors"] += 1
    changed["daily_outcomes"].pop()
    changed["daily_requests"][0]["p95_ms"] += 1e-3
    found = table_differences(tables, changed)
    assert any(d.startswith("daily_errors row 0 errors") for d in found)
    assert any(d.startswith("daily_outcomes: ") for d in found)
    assert any(d.startswith("daily_requests row 0 p95_ms") for d in found)
    assert len(found) == 3


# ---- the lake as a training source --------------------------------------------------------
def _feedback_lake(root: Path, ds: Dataset) -> None:
    """Clicks and engagement from three known users, one stranger, a re-sent event and an
    item the catalog does not have."""
    from novarank.telemetry.schemas import user_key

    w = LakeWriter(root)
    t0 = (int(ds.ts.max()) + 3600) * 1000
    known = [str(u) for u in ds.user_ids[:3]]
    items = [str(i) for i in ds.items.ids[:4]]
    base = {"received_ms": t0, "request_id": "r", "variant": "control", "release": "r1"}
    clicks = [{**base, "event_id": f"c{n}", "ts": t0 + n, "user_key": user_key(u),
               "item_id": items[n % 4], "position": 0} for n, u in enumerate(known)]
    clicks.append({**base, "event_id": "c-new", "ts": t0 + 9, "user_key": "stranger",
                   "item_id": "brand-new-item", "position": 1})
    w.write("click", clicks)
    w.write("click", [{**clicks[0], "received_ms": t0 + 50}])  # re-sent: counted once
    w.write("engagement", [{**base, "event_id": "e1", "ts": t0 + 20,
                            "user_key": user_key(known[0]), "kind": "watch",
                            "item_id": items[3], "value": 0.75},
                           {**base, "event_id": "e2", "ts": t0 + 21,
                            "user_key": user_key(known[1]), "kind": "like",
                            "item_id": items[2], "value": None}])


def _rows(ds: Dataset) -> list[tuple]:
    return sorted(zip(ds.user_ids[ds.user].tolist(), ds.items.ids[ds.item].tolist(),
                      ds.event.tolist(), np.round(ds.value, 5).tolist(), ds.ts.tolist(),
                      strict=True))


def test_lake_feedback_joins_the_training_data(small, tmp_path):
    from novarank.analytics.feedback import with_feedback

    _feedback_lake(tmp_path, small)
    merged = with_feedback(small, tmp_path)
    assert merged.n_events == small.n_events + 6  # 4 clicks + 2 engagements, the resend once
    assert merged.n_users == small.n_users + 1 and "stranger" in merged.user_index
    assert merged.n_items == small.n_items + 1 and "brand-new-item" in merged.item_index
    u0 = merged.user_index[str(small.user_ids[0])]
    watch = (merged.user == u0) & (merged.event == 2)
    assert merged.value[watch].max() == pytest.approx(0.75)


def test_spark_reads_the_lake_feedback_the_local_engine_reads(spark, small, tmp_path):
    from novarank.analytics.feedback import with_feedback
    from novarank.spark.interactions import from_dataset
    from novarank.spark.interactions import with_feedback as spark_feedback

    _feedback_lake(tmp_path, small)
    local = with_feedback(small, tmp_path)
    remote = spark_feedback(spark, from_dataset(spark, small), str(tmp_path))
    table = remote.frame.orderBy("seq").toArrow()
    remote_rows = sorted(zip(
        remote.user_ids[table.column("user").to_numpy()].tolist(),
        remote.items.ids[table.column("item").to_numpy()].tolist(),
        table.column("event").to_numpy().tolist(),
        np.round(table.column("value").to_numpy(), 5).tolist(),
        table.column("ts").to_numpy().tolist(), strict=True))
    assert remote_rows == _rows(local)
    assert remote.user_ids.tolist() == local.user_ids.tolist()  # base users keep their index
    assert remote.items.ids.tolist() == local.items.ids.tolist()


# ---- parity on MovieLens-100K --------------------------------------------------------------
def test_spark_release_reaches_the_quality_bar_and_serves(spark, tmp_path):
    """The Spark engine tunes, evaluates and locks a release of MovieLens-100K: it passes
    the local engine's quality bar, verifies, serves a feed, and its feeds overlap those
    of a local fit with the same tuned configuration."""
    from novarank.data.loaders import load
    from novarank.evaluation.overlap import top_k_jaccard
    from novarank.online.service import open_local
    from novarank.pipeline import train_release
    from novarank.release import load_release
    from novarank.spark.engine import SparkEngine

    engine = SparkEngine(spark)
    model, res, lock = train_release(engine.read("ml-100k"), tmp_path / "spark",
                                     engine=engine, version="spark")
    assert res.report is not None
    ranker = res.report.get("ranker")
    assert ranker["recall"] >= 0.135 and ranker["ndcg"] >= 0.215, ranker
    assert lock.metrics["engine"]["name"] == "spark"
    served = load_release(tmp_path / "spark")[0]  # verifies every hash first
    local = fit_model(load("ml-100k"), served.config)
    overlap = top_k_jaccard(local, served)
    assert overlap["users"] == 943 and overlap["mean"] >= 0.6, overlap
    service = open_local(tmp_path / "spark", at="release")
    try:
        feed = service.feeds.feed(str(model.user_ids[0]), k=5, override="control")
        assert len(feed.items) == 5
    finally:
        service.close()


def test_a_spark_release_passes_the_launch_gates(spark, tmp_path):
    """The staging dry-run serves a Spark-built release: the gates that judge a release
    (its lock, the smoke feeds per cohort, the cache, telemetry, rollups, the rollback
    drill) are green, as for a local one (tests/test_gates.py)."""
    import json

    from typer.testing import CliRunner

    from novarank.cli.main import app
    from novarank.pipeline import train_release
    from novarank.spark.engine import SparkEngine

    data = "synthetic:users=1000,items=800,events=150000,seed=3"
    engine = SparkEngine(spark)
    train_release(engine.read(data), tmp_path / "rel", TrainConfig(tune=False),
                  do_evaluate=False, engine=engine, version="spark-built")
    deploy = Path(__file__).resolve().parents[1] / "deploy"
    res = CliRunner().invoke(app, [
        "launch", "dry-run", "--data", data, "--release", str(tmp_path / "rel"),
        "--sessions", "350", "--deploy", str(deploy), "--out", str(tmp_path / "pack")])
    assert res.exit_code == 0, res.output
    doc = json.loads((tmp_path / "pack" / "gates.json").read_text())
    verdicts = {g["number"]: g["verdict"] for g in doc["gates"]}
    for n in (0, 1, 2, 3, 5, 6, 9, 10):
        assert verdicts[n] == "GREEN", (n, doc["gates"][n]["details"])
    assert json.loads((tmp_path / "rel" / "release.lock.json").read_text())[
        "metrics"]["engine"]["name"] == "spark"


def test_the_cli_trains_and_rolls_up_on_spark(spark, tmp_path):
    """`novarank train --engine spark --lake` and `novarank rollup --engine spark`, as a
    user types them (the module's session is reused: one JVM)."""
    from typer.testing import CliRunner

    from novarank.cli.main import app

    date = _lake(tmp_path / "lake")
    runner = CliRunner()
    res = runner.invoke(app, ["rollup", "--engine", "spark", "--lake", str(tmp_path / "lake"),
                              "--date", date])
    assert res.exit_code == 0, res.output
    assert "on spark" in res.output and "exact" in res.output
    bad = runner.invoke(app, ["rollup", "--engine", "trino", "--lake", str(tmp_path / "lake")])
    assert bad.exit_code != 0 and "--engine" in bad.output
    _feedback_lake(tmp_path / "fb", generate(SyntheticConfig(users=60, items=40, events=900,
                                                             seed=1)).dataset)
    res = runner.invoke(app, ["train", "--engine", "spark", "--data",
                              "synthetic:users=60,items=40,events=900,seed=1", "--lake",
                              str(tmp_path / "fb"), "--out", str(tmp_path / "rel"),
                              "--no-tune", "--no-evaluate"])
    assert res.exit_code == 0, res.output
    from novarank.release import load_release

    model = load_release(tmp_path / "rel")[0]
    assert "stranger" in model.user_ids.tolist() and "brand-new-item" in model.item_ids.tolist()
