"""Where telemetry batches go: the Parquet lake, or a Redis Stream drained by `novarank ingest`."""

from __future__ import annotations

import json
import logging
import os
import time
import uuid
from collections import defaultdict
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Protocol

import numpy as np
import orjson
import pyarrow as pa
import pyarrow.parquet as pq

from novarank.telemetry.schemas import table

log = logging.getLogger("novarank.telemetry")


class Sink(Protocol):
    name: str

    def write(self, kind: str, rows: list[dict[str, Any]]) -> int:
        """Write the rows; returns how many reached the sink (the rest were dead-lettered)."""
        ...
    def close(self) -> None: ...


def event_date(ts_ms: int) -> str:
    return datetime.fromtimestamp(ts_ms / 1000, UTC).strftime("%Y-%m-%d")


LEDGER = "_ledger.jsonl"


class LakeWriter:
    """events/<type>/event_date=YYYY-MM-DD/part-*.parquet, written to a temporary name and
    renamed into place: a reader sees a whole part or none of it.

    After each rename the writer appends one line to the partition's `_ledger.jsonl` (part
    name, rows, first and last event_id, writer pid): the writer's own count, which the
    rollup reconciles against so that a part lost or counted twice later is caught.
    """

    name = "parquet"

    def __init__(self, root: str | Path) -> None:
        self.root = Path(root)
        self.dead_lettered = 0  # rows no part could hold, kept in events/_deadletter/

    def write(self, kind: str, rows: list[dict[str, Any]], stem: str | None = None) -> int:
        """Write the rows as one part per UTC day. `stem` names the parts for good: writing
        the same stem again replaces them instead of adding a second copy (the ingester
        names parts by the stream messages they hold, so a re-delivered batch is idempotent)."""
        by_day: dict[int, list[dict[str, Any]]] = defaultdict(list)
        written = 0
        for r in rows:
            ts = r.get("ts")
            day_number = ts // 86_400_000 if isinstance(ts, int) else -1
            by_day[day_number].append(r)  # UTC day number: no datetime per row
        for day_number, day_rows in by_day.items():
            good, arrow = self._table(kind, day_rows, day_number)
            if not good:
                continue
            written += len(good)
            self._part(kind, arrow, day_number, good[0].get("event_id"),
                       good[-1].get("event_id"), stem)
        return written

    def write_table(self, kind: str, arrow: pa.Table) -> int:
        """Write a table of exactly the kind's schema (telemetry/answered.py builds them),
        one part per UTC day of its `ts`."""
        days = arrow["ts"].to_numpy() // 86_400_000
        numbers = np.unique(days).tolist()
        for day_number in numbers:
            part = arrow if len(numbers) == 1 else arrow.filter(pa.array(days == day_number))
            self._part(kind, part, day_number, part["event_id"][0].as_py(),
                       part["event_id"][-1].as_py(), None)
        return arrow.num_rows

    def _part(self, kind: str, arrow: pa.Table, day_number: int, first: str | None,
              last: str | None, stem: str | None) -> None:
        """One part file, renamed into place, then its line in the partition's ledger."""
        day = event_date(day_number * 86_400_000)
        d = self.root / "events" / kind / f"event_date={day}"
        d.mkdir(parents=True, exist_ok=True)
        name = (f"part-{stem}.parquet" if stem else
                f"part-{int(time.time() * 1000)}-{uuid.uuid4().hex[:8]}.parquet")
        tmp = d / f".{name}.tmp"
        pq.write_table(arrow, tmp, compression="snappy")  # cheap on CPU
        os.replace(tmp, d / name)
        _append_ledger(d / LEDGER, {"part": name, "rows": arrow.num_rows, "first": first,
                                    "last": last, "writer": os.getpid()})

    def _table(self, kind: str, rows: list[dict[str, Any]], day_number: int
               ) -> tuple[list[dict[str, Any]], Any]:
        """The rows the schema can hold, as one table. A row that cannot be written (an
        integer out of range, invalid UTF-8, no timestamp) goes to the dead letters with
        its reason instead of taking its flush-mates with it."""
        if day_number >= 0:
            try:
                return rows, table(kind, rows)
            except (pa.ArrowException, ValueError, TypeError, OverflowError):
                pass  # find the poison: only now pay for a table per row
        good, bad = [], []
        for row in rows:
            try:
                if not isinstance(row.get("ts"), int):
                    raise ValueError("ts: not an integer timestamp")
                table(kind, [row])
                good.append(row)
            except (pa.ArrowException, ValueError, TypeError, OverflowError) as exc:
                bad.append((row, f"{type(exc).__name__}: {exc}"[:300]))
        self._dead_letter(kind, bad)
        return good, table(kind, good) if good else None

    def _dead_letter(self, kind: str, bad: list[tuple[dict[str, Any], str]]) -> None:
        if not bad:
            return
        d = self.root / "events" / "_deadletter" / kind
        d.mkdir(parents=True, exist_ok=True)
        path = d / f"part-{int(time.time() * 1000)}-{uuid.uuid4().hex[:8]}.jsonl"
        lines = [json.dumps({"reason": why, "row": row}, default=repr, ensure_ascii=True)
                 for row, why in bad]  # ascii escapes: a lone surrogate cannot break it
        path.write_text("\n".join(lines) + "\n")
        self.dead_lettered += len(bad)
        log.error("telemetry: %d %s rows dead-lettered to %s (%s)", len(bad), kind, path,
                  bad[0][1])

    def close(self) -> None:
        pass


def _append_ledger(path: Path, entry: dict[str, Any]) -> None:
    """One write() of one line with O_APPEND: concurrent writers never interleave a line."""
    fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    try:
        os.write(fd, orjson.dumps(entry) + b"\n")
    finally:
        os.close(fd)


def read_ledger(partition_dir: Path) -> dict[str, int] | None:
    """Part name -> rows its writer wrote; None when the partition has no ledger. A part
    written again under its own name (a re-delivered batch) replaced the first: its last
    line counts."""
    path = partition_dir / LEDGER
    if not path.exists():
        return None
    out: dict[str, int] = {}
    for line in path.read_bytes().splitlines():
        if line.strip():
            entry = orjson.loads(line)
            out[entry["part"]] = int(entry["rows"])
    return out


class StreamWriter:
    """One XADD per batch of rows (JSON), to `<prefix>telemetry`; MAXLEN bounds memory."""

    name = "redis-stream"

    def __init__(self, url: str, stream: str, maxlen: int = 5_000_000) -> None:
        import redis

        self._r = redis.Redis.from_url(url, socket_timeout=5.0)
        self.stream, self.maxlen = stream, maxlen

    def write(self, kind: str, rows: list[dict[str, Any]]) -> int:
        from novarank.stores.unavailable import unavailable_on_error

        with unavailable_on_error("event stream"):
            pipe = self._r.pipeline(transaction=False)
            for start in range(0, len(rows), 500):  # bounded message size
                pipe.xadd(self.stream, {"kind": kind,
                                        "rows": orjson.dumps(rows[start:start + 500])},
                          maxlen=self.maxlen, approximate=True)
            pipe.execute()
        return len(rows)

    def close(self) -> None:
        self._r.close()


def open_sink(url: str, stream_name: str = "nr:telemetry") -> Sink | None:
    """file://DIR -> lake, redis://... -> stream, null:// -> telemetry off (None)."""
    from novarank.errors import ConfigError

    if url.startswith("file://"):
        return LakeWriter(url[len("file://"):])
    if url.startswith(("redis://", "rediss://")):
        return StreamWriter(url, stream_name)
    if url.startswith("null://"):
        return None
    raise ConfigError(f"events_url: unsupported URL {url!r} (allowed: file://DIR, redis://..., "
                      "null://)")
