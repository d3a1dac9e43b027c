"""`novarank rollup --date D`: versioned SQL over one day of the lake, run by DuckDB here
or by Spark (spark/rollup.py): the SQL is written in what both engines run.

Outputs rollups/<table>/event_date=D/data.parquet and rollups/summary/event_date=D/
summary.json. Re-running a day rewrites the same files (idempotent). Every run checks
that the rolled-up totals equal counts made independently of the SQL (analytics/
reconcile.py: Parquet footers, Arrow's distinct event_ids, the writers' ledgers).
"""

from __future__ import annotations

import json
import os
import time
from dataclasses import asdict, dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any, Protocol

import duckdb
import pyarrow as pa
import pyarrow.parquet as pq

from novarank.analytics.lake import Scan, parquet_source, scan
from novarank.analytics.reconcile import reconcile
from novarank.telemetry.schemas import SCHEMAS

SQL_VERSION = "v2"
TABLES = ("daily_requests", "daily_errors", "daily_outcomes", "daily_integrity")


@dataclass
class RollupResult:
    date: str
    sql_version: str
    tables: dict[str, list[dict[str, Any]]]
    raw_events: dict[str, int]
    reconciliation: dict[str, Any]
    bad_files: list[dict[str, str]]
    files_read: dict[str, int]
    catalog_items: int | None
    seconds: float = 0.0
    outputs: list[str] = field(default_factory=list)
    engine: str = "duckdb"

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    def total(self, table: str, level: str = "all", **match: Any) -> dict[str, Any] | None:
        """The row of one grouping level (`all`, `route`, `group`) that matches; never a
        NULL-keyed group mistaken for a total."""
        for row in self.tables[table]:
            if row.get("level") == level and all(row.get(k) == v for k, v in match.items()):
                return row
        return None


def _sql(name: str) -> str:
    return resources.files("novarank.analytics").joinpath(
        f"sql/{SQL_VERSION}/{name}.sql").read_text()


class SqlEngine(Protocol):
    """Runs the rollup SQL over one day's views: <type>_raw (every row of the readable
    parts) and <type> (one row per event_id; only events at or after `since_ms`)."""

    name: str

    def register(self, found: Scan, since_ms: int | None = None) -> None: ...

    def query(self, sql: str) -> pa.Table: ...

    def close(self) -> None: ...


class DuckEngine:
    """The embedded default: one DuckDB process."""

    name = "duckdb"

    def __init__(self, threads: int = 2) -> None:
        self.con = duckdb.connect()
        self.con.execute(f"SET threads = {int(threads)}")

    def register(self, found: Scan, since_ms: int | None = None) -> None:
        con = self.con
        for kind, schema in SCHEMAS.items():
            files = found.files.get(kind, [])
            if files:
                con.execute(f"CREATE VIEW {kind}_raw AS SELECT * FROM {parquet_source(files)}")
            else:
                con.register(f"{kind}_empty", schema.empty_table())
                con.execute(f"CREATE VIEW {kind}_raw AS SELECT * FROM {kind}_empty")
            where = "" if since_ms is None else f"WHERE ts >= {int(since_ms)} "
            con.execute(f"CREATE TABLE {kind} AS SELECT * FROM {kind}_raw {where}QUALIFY "
                        "row_number() OVER (PARTITION BY event_id ORDER BY received_ms) = 1")

    def query(self, sql: str) -> pa.Table:
        return self.con.sql(sql).to_arrow_table()

    def close(self) -> None:
        self.con.close()


def _write(table: pa.Table, path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp")
    pq.write_table(table, tmp)
    os.replace(tmp, path)


def rollup(lake: str | Path, date: str, catalog_items: int | None = None,
           threads: int = 2, engine: SqlEngine | None = None) -> RollupResult:
    """The day's tables by `engine` (default DuckDB with `threads`), written and
    reconciled; the engine is closed afterwards."""
    t0 = time.perf_counter()
    root = Path(lake)
    found = scan(root, date)
    engine = engine or DuckEngine(threads)
    try:
        engine.register(found)
        counts = engine.query(" UNION ALL ".join(
            f"SELECT '{kind}' AS kind, count(*) AS n FROM {kind}" for kind in SCHEMAS))
        raw = {str(r["kind"]): int(r["n"]) for r in counts.to_pylist()}
        tables: dict[str, list[dict[str, Any]]] = {}
        outputs = []
        for name in TABLES:
            arrow = engine.query(_sql(name))
            path = root / "rollups" / name / f"event_date={date}" / "data.parquet"
            _write(arrow, path)
            outputs.append(str(path))
            tables[name] = arrow.to_pylist()
    finally:
        engine.close()
    result = RollupResult(date=date, sql_version=SQL_VERSION, tables=tables, raw_events=raw,
                          reconciliation={}, bad_files=found.bad, files_read=found.count(),
                          catalog_items=catalog_items, outputs=outputs, engine=engine.name)
    result.reconciliation = reconcile(tables, found)
    result.seconds = round(time.perf_counter() - t0, 3)
    summary = root / "rollups" / "summary" / f"event_date={date}" / "summary.json"
    summary.parent.mkdir(parents=True, exist_ok=True)
    tmp = summary.with_name(".summary.json.tmp")
    tmp.write_text(json.dumps(result.to_dict(), indent=2, default=str))
    os.replace(tmp, summary)
    return result


def window(lake: str | Path, date: str, since_ms: int, catalog_items: int | None = None
           ) -> dict[str, Any]:
    """The daily tables over the part of a day from `since_ms` on, as a summary the tiles
    read: e.g. the traffic after a warm plan, so a tile judges steady state, not the cold
    start a harness measured on purpose. Writes nothing; the day's own rollup (and its
    reconciliation) stays the whole day's."""
    engine = DuckEngine()
    try:
        engine.register(scan(Path(lake), date), since_ms)
        tables = {name: engine.query(_sql(name)).to_pylist() for name in TABLES}
    finally:
        engine.close()
    return {"date": date, "tables": tables, "catalog_items": catalog_items,
            "since_ms": since_ms}


def table_differences(left: dict[str, list[dict[str, Any]]],
                      right: dict[str, list[dict[str, Any]]], rel: float = 1e-9) -> list[str]:
    """Where two runs' daily tables differ (row by row, in order; floats to `rel`), one line
    each: how the engines are held to the same answer."""
    out: list[str] = []
    for name in sorted(set(left) | set(right)):
        a, b = left.get(name), right.get(name)
        if a is None or b is None:
            out.append(f"{name}: only in {'right' if a is None else 'left'}")
            continue
        if len(a) != len(b):
            out.append(f"{name}: {len(a)} rows vs {len(b)}")
            continue
        for i, (ra, rb) in enumerate(zip(a, b, strict=True)):
            for col in sorted(set(ra) | set(rb)):
                va, vb = ra.get(col), rb.get(col)
                same = (va == vb if not (isinstance(va, float) or isinstance(vb, float))
                        else va is not None and vb is not None
                        and abs(va - vb) <= rel * max(1.0, abs(va), abs(vb)))
                if not same:
                    out.append(f"{name} row {i} {col}: {va!r} vs {vb!r}")
    return out


def load_summary(lake: str | Path, date: str) -> dict[str, Any] | None:
    path = Path(lake) / "rollups" / "summary" / f"event_date={date}" / "summary.json"
    return json.loads(path.read_text()) if path.exists() else None
