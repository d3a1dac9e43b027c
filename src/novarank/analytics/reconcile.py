"""Reconcile a day's rollup against counts it did not compute itself.

The rollup's SQL counts distinct event_ids in DuckDB. Checking it against more DuckDB
counts of the same views could never fail, so the expected numbers come from elsewhere:
per-file row counts from the Parquet footers, distinct event_ids counted by Arrow, and
the writers' own ledger of every part they renamed into place. A part lost after it was
written, a part whose rows changed, or a rollup that counts rows twice all fail here.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from novarank.analytics.lake import Scan


def _files(paths: list[Path]) -> tuple[dict[str, int], int]:
    """Rows per part (from the footer) and distinct event_ids over all of them (Arrow)."""
    rows = {p.name: pq.read_metadata(p).num_rows for p in paths}
    if not paths:
        return rows, 0
    ids = pa.chunked_array([pq.read_table(p, columns=["event_id"]).column(0).combine_chunks()
                            for p in paths], type=pa.string())
    return rows, int(pc.count_distinct(ids, mode="all").as_py())


def _ledger(found: Scan, kind: str, rows: dict[str, int]) -> dict[str, Any]:
    ledger = found.ledgers.get(kind)
    if ledger is None:
        return {"ledger": False, "written": None, "missing": [], "changed": [],
                "unledgered": sorted(rows)}
    missing = sorted(p for p in ledger if p not in rows)
    changed = sorted(p for p in ledger if p in rows and rows[p] != ledger[p])
    return {"ledger": True, "written": sum(ledger.values()), "missing": missing,
            "changed": changed, "unledgered": sorted(p for p in rows if p not in ledger)}


def rolled_up(tables: dict[str, list[dict[str, Any]]]) -> dict[str, int]:
    """What the rollup tables say each event type totals to."""
    req = next((r for r in tables["daily_requests"] if r["level"] == "all"), None)
    out = next((r for r in tables["daily_outcomes"] if r["level"] == "all"), None) or {}
    return {"request": req["requests"] if req else 0,
            "impression": out.get("impressions", 0), "click": out.get("clicks", 0),
            "engagement": sum(out.get(k, 0) for k in ("likes", "shares", "skips", "watches")),
            "error": sum(x["errors"] for x in tables["daily_errors"])}


def reconcile(tables: dict[str, list[dict[str, Any]]], found: Scan) -> dict[str, Any]:
    totals = rolled_up(tables)
    checks: dict[str, Any] = {}
    files: dict[str, Any] = {}
    problems: list[str] = []
    for kind, paths in found.files.items():
        rows, distinct = _files(paths)
        led = _ledger(found, kind, rows)
        files[kind] = {"parts": len(paths), "rows": sum(rows.values()),
                       "duplicates": sum(rows.values()) - distinct, **led}
        for part in led["missing"]:
            problems.append(f"{kind}: part {part} was written ({found.ledgers[kind][part]} "
                            "rows) but is missing or unreadable")
        for part in led["changed"]:
            problems.append(f"{kind}: part {part} holds {rows[part]} rows, its writer wrote "
                            f"{found.ledgers[kind][part]}")
        if kind in totals:
            checks[kind] = {"rolled_up": totals[kind], "independent": distinct}
            if totals[kind] != distinct:
                problems.append(f"{kind}: rolled up {totals[kind]}, the parts hold {distinct} "
                                "distinct events")
    groups = sum(r["requests"] for r in tables["daily_requests"] if r["level"] == "group")
    checks["request_groups"] = {"rolled_up": groups, "independent": totals["request"]}
    if groups != totals["request"]:
        problems.append(f"request: groups sum to {groups}, the total says {totals['request']}")
    return {"ok": not problems, "problems": problems, "checks": checks, "files": files}
