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
    """Non-blocking: `emit` only appends to a bounded buffer; a background thread writes
    every `flush_s` seconds or as soon as `batch` events wait. When the buffer is full the
    event is dropped and counted in `dropped` (the request never waits on disk)."""

    name = "parquet"

    def __init__(self, root: str | Path, batch: int = 5_000, max_buffer: int = 200_000,
                 flush_s: float = 1.0) -> None:
        self.root = Path(root)
        self.batch, self.max_buffer, self.flush_s = batch, max_buffer, flush_s
        self._buf: list[tuple[str, dict[str, Any]]] = []
        self._lock = threading.Lock()
        self._write_lock = threading.Lock()
        self._wake = threading.Event()
        self._stop = threading.Event()
        self.written = 0
        self.dropped = 0
        self._thread = threading.Thread(target=self._run, name="nr-events", daemon=True)
        self._thread.start()

    def emit(self, kind: str, row: dict[str, Any]) -> None:
        with self._lock:
            if len(self._buf) >= self.max_buffer:
                self.dropped += 1
                return
            self._buf.append((kind, row))
            if len(self._buf) >= self.batch:
                self._wake.set()

    def _run(self) -> None:
        while not self._stop.is_set():
            self._wake.wait(self.flush_s)
            self._wake.clear()
            self.flush()

    def flush(self) -> int:
        with self._lock:
            buf, self._buf = self._buf, []
        if not buf:
            return 0
        groups: dict[tuple[str, str], list[dict[str, Any]]] = defaultdict(list)
        for kind, row in buf:
            day = datetime.fromtimestamp(row["ts"], UTC).strftime("%Y-%m-%d")
            groups[(kind, day)].append(row)
        with self._write_lock:
            for (kind, day), rows in groups.items():
                self._write(kind, day, rows)
            self.written += len(buf)
        return len(buf)

    def _write(self, kind: str, day: str, rows: list[dict[str, Any]]) -> None:
        d = self.root / "events" / kind / f"event_date={day}"
        d.mkdir(parents=True, exist_ok=True)
        name = f"part-{int(time.time() * 1000)}-{uuid.uuid4().hex[:8]}.parquet"
        tmp = d / f".{name}.tmp"
        pq.write_table(pa.Table.from_pylist(rows), tmp)
        os.replace(tmp, d / name)

    def close(self) -> None:
        """Stop the writer and flush everything still buffered (called on SIGTERM)."""
        self._stop.set()
        self._wake.set()
        self._thread.join(timeout=10)
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
