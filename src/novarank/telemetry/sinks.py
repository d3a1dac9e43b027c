"""Where telemetry batches go: the Parquet lake, or a Redis Stream drained by `novarank ingest`."""

from __future__ import annotations

import os
import time
import uuid
from collections import defaultdict
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Protocol

import orjson
import pyarrow.parquet as pq

from novarank.telemetry.schemas import table


class Sink(Protocol):
    name: str

    def write(self, kind: str, rows: list[dict[str, Any]]) -> None: ...
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

    def write(self, kind: str, rows: list[dict[str, Any]]) -> None:
        by_day: dict[int, list[dict[str, Any]]] = defaultdict(list)
        for r in rows:
            by_day[r["ts"] // 86_400_000].append(r)  # UTC day number: no datetime per row
        for day_number, day_rows in by_day.items():
            day = event_date(day_number * 86_400_000)
            d = self.root / "events" / kind / f"event_date={day}"
            d.mkdir(parents=True, exist_ok=True)
            name = f"part-{int(time.time() * 1000)}-{uuid.uuid4().hex[:8]}.parquet"
            tmp = d / f".{name}.tmp"
            pq.write_table(table(kind, day_rows), tmp, compression="snappy")  # cheap on CPU
            os.replace(tmp, d / name)
            _append_ledger(d / LEDGER, {"part": name, "rows": len(day_rows),
                                        "first": day_rows[0].get("event_id"),
                                        "last": day_rows[-1].get("event_id"),
                                        "writer": os.getpid()})

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
    """Part name -> rows its writer wrote; None when the partition has no ledger."""
    path = partition_dir / LEDGER
    if not path.exists():
        return None
    out: dict[str, int] = {}
    for line in path.read_bytes().splitlines():
        if line.strip():
            entry = orjson.loads(line)
            out[entry["part"]] = out.get(entry["part"], 0) + int(entry["rows"])
    return out


class StreamWriter:
    """One XADD per batch of rows (JSON), to `<prefix>telemetry`; MAXLEN bounds memory."""

    name = "redis-stream"

    def __init__(self, url: str, stream: str, maxlen: int = 5_000_000) -> None:
        import redis

        self._r = redis.Redis.from_url(url, socket_timeout=5.0)
        self.stream, self.maxlen = stream, maxlen

    def write(self, kind: str, rows: list[dict[str, Any]]) -> None:
        pipe = self._r.pipeline(transaction=False)
        for start in range(0, len(rows), 500):  # bounded message size
            pipe.xadd(self.stream, {"kind": kind, "rows": orjson.dumps(rows[start:start + 500])},
                      maxlen=self.maxlen, approximate=True)
        pipe.execute()

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
