"""Telemetry write path: events buffered in memory, written as date-partitioned Parquet.

Layout: <root>/events/<type>/event_date=YYYY-MM-DD/part-<unix_ms>-<uuid>.parquet.
Each file is written to a temporary name and renamed into place, so a reader never
sees a half-written part.
"""

from __future__ import annotations

import os
import threading
import time
import uuid
from collections import defaultdict
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Protocol

import pyarrow as pa
import pyarrow.parquet as pq


class EventSink(Protocol):
    name: str

    def emit(self, kind: str, row: dict[str, Any]) -> None: ...
    def flush(self) -> int: ...
    def close(self) -> None: ...


class ParquetEventSink:
    name = "parquet"

    def __init__(self, root: str | Path, max_buffer: int = 5_000) -> None:
        self.root = Path(root)
        self.max_buffer = max_buffer
        self._buf: dict[str, list[dict[str, Any]]] = defaultdict(list)
        self._size = 0
        self._lock = threading.Lock()
        self.written = 0

    def emit(self, kind: str, row: dict[str, Any]) -> None:
        with self._lock:
            self._buf[kind].append(row)
            self._size += 1
            full = self._size >= self.max_buffer
        if full:
            self.flush()

    def flush(self) -> int:
        with self._lock:
            buf, self._buf, self._size = self._buf, defaultdict(list), 0
        n = 0
        for kind, rows in buf.items():
            by_day: dict[str, list[dict[str, Any]]] = defaultdict(list)
            for r in rows:
                by_day[datetime.fromtimestamp(r["ts"], UTC).strftime("%Y-%m-%d")].append(r)
            for day, day_rows in by_day.items():
                self._write(kind, day, day_rows)
                n += len(day_rows)
        self.written += n
        return n

    def _write(self, kind: str, day: str, rows: list[dict[str, Any]]) -> None:
        d = self.root / "events" / kind / f"event_date={day}"
        d.mkdir(parents=True, exist_ok=True)
        name = f"part-{int(time.time() * 1000)}-{uuid.uuid4().hex[:8]}.parquet"
        tmp = d / f".{name}.tmp"
        pq.write_table(pa.Table.from_pylist(rows), tmp)
        os.replace(tmp, d / name)

    def close(self) -> None:
        self.flush()


class NullEventSink:
    """Telemetry off."""

    name = "null"

    def emit(self, kind: str, row: dict[str, Any]) -> None:
        pass

    def flush(self) -> int:
        return 0

    def close(self) -> None:
        pass
