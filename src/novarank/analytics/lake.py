"""Reading the lake safely: every part file is checked before a query may count it."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq

from novarank.telemetry.schemas import ADDED, SCHEMAS
from novarank.telemetry.sinks import read_ledger


@dataclass
class Scan:
    date: str
    files: dict[str, list[Path]] = field(default_factory=dict)  # type -> readable parts
    bad: list[dict[str, str]] = field(default_factory=list)  # {"file", "reason"}
    # type -> {part name: rows its writer wrote}; None for a partition without a ledger
    ledgers: dict[str, dict[str, int] | None] = field(default_factory=dict)

    def count(self) -> dict[str, int]:
        return {k: len(v) for k, v in self.files.items()}


def sql_str(text: str) -> str:
    """A SQL string literal (quotes doubled), for paths and versions in DuckDB queries."""
    return "'" + text.replace("'", "''") + "'"


def parquet_source(paths: list[Path] | list[str]) -> str:
    """DuckDB's read_parquet over these part files (columns matched by name)."""
    return f"read_parquet([{', '.join(sql_str(str(p)) for p in paths)}], union_by_name=true)"


def partition(lake: Path, kind: str, date: str) -> Path:
    return lake / "events" / kind / f"event_date={date}"


def _compatible(found: pa.Schema, expected: pa.Schema, added: frozenset[str] = frozenset()
                ) -> str | None:
    """Why a part cannot be read as `expected`, or None. A column of `added` may be missing
    (the part predates it: read as null)."""
    for f in expected:
        i = found.get_field_index(f.name)
        if i < 0:
            if f.name in added:
                continue
            return f"missing column '{f.name}'"
        if not found.field(i).type.equals(f.type):
            return f"column '{f.name}' is {found.field(i).type}, expected {f.type}"
    return None


def scan(lake: str | Path, date: str, since: float | None = None) -> Scan:
    """Readable part files per event type for one day; bad ones are named, never counted.
    `since` (unix s) skips parts written before it: they cannot hold later events."""
    root = Path(lake)
    out = Scan(date)
    for kind, schema in SCHEMAS.items():
        good: list[Path] = []
        out.ledgers[kind] = read_ledger(partition(root, kind, date))
        for path in sorted(partition(root, kind, date).glob("part-*.parquet")):
            try:
                if since is not None and path.stat().st_mtime < since:
                    continue
                reason = _compatible(pq.read_schema(path), schema,
                                     ADDED.get(kind, frozenset()))
            except (pa.ArrowInvalid, OSError) as exc:
                reason = f"unreadable: {exc}"
            if reason is None:
                good.append(path)
            else:
                out.bad.append({"file": str(path), "reason": reason})
        out.files[kind] = good
    return out


def days(since: float, until: float) -> list[str]:
    """The UTC dates (ISO) from `since` to `until` (unix s), both included."""
    d, end = datetime.fromtimestamp(since, UTC).date(), datetime.fromtimestamp(until, UTC).date()
    out = []
    while d <= end:
        out.append(d.isoformat())
        d += timedelta(days=1)
    return out


def files_between(lake: str | Path, kinds: tuple[str, ...], since: float, until: float
                  ) -> dict[str, list[str]]:
    """The readable parts of each kind on the days [since, until] touches (unix s; parts
    from 5 s before `since`, so an event emitted at the edge is not missed)."""
    files: dict[str, list[str]] = {kind: [] for kind in kinds}
    for day in days(since, until):
        found = scan(lake, day, since=since - 5)
        for kind in kinds:
            files[kind] += [str(p) for p in found.files.get(kind, [])]
    return files


def clicked_positions(con: Any, clicks: list[Path] | list[str]) -> dict[str, set[int]]:
    """The slots clicked on each request (request id -> positions), over a DuckDB
    connection: how clicks join the ranking they were shown on."""
    out: dict[str, set[int]] = {}
    if clicks:
        for rid, pos in con.sql(f"SELECT request_id, position FROM {parquet_source(clicks)} "
                                "WHERE position IS NOT NULL").fetchall():
            out.setdefault(rid, set()).add(int(pos))
    return out
