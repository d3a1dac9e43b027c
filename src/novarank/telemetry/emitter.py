"""The request path's only telemetry call: `emit()` appends to a bounded buffer and returns.

A background thread flushes by size (`batch`) and time (`flush_s`). A batch the sink
refuses (the stream is down) goes back to the front of the buffer and is written, in
order, once the sink answers again, so an outage shorter than the buffer loses nothing.
An event that finds no room is dropped and counted by reason (`buffer_full`, or
`sink_down` while the sink refuses writes; `dead_letter` for rows the lake could not
hold), and the next write that succeeds carries an `error` event saying how many were
lost and why, so the lake itself shows the loss. `close()` (on SIGTERM) flushes.
"""

from __future__ import annotations

import logging
import random
import threading
import time
from collections import defaultdict
from collections.abc import Callable
from typing import Any

from novarank.telemetry.schemas import SCHEMA_VERSION
from novarank.telemetry.sinks import Sink

log = logging.getLogger("novarank.telemetry")


class Emitter:
    def __init__(self, sink: Sink | None, *, batch: int = 5_000, max_buffer: int = 200_000,
                 flush_s: float = 1.0, release: str = "",
                 on_drop: Callable[[int, str], None] | None = None) -> None:
        self.sink = sink
        self.batch, self.max_buffer, self.flush_s = batch, max_buffer, flush_s
        self.release = release
        self.on_drop = on_drop
        self._buf: list[tuple[str, dict[str, Any]]] = []
        self._lock = threading.Lock()
        self._write_lock = threading.Lock()
        self._wake = threading.Event()
        self._stop = threading.Event()
        self.written = 0
        self.dropped = 0
        self.failed_batches = 0
        self._unreported: dict[str, int] = defaultdict(int)  # reason -> not yet in the lake
        self.sink_up = True
        self._thread = None
        if sink is not None:
            self._thread = threading.Thread(target=self._run, name="nr-telemetry", daemon=True)
            self._thread.start()
            log.info("telemetry to %s: batches of %d, flushed every %.1f s", self.name, batch,
                     flush_s)

    @property
    def alive(self) -> bool:
        """The writer thread runs (or there is none to run: telemetry off)."""
        return self._thread is None or self._thread.is_alive()

    @property
    def name(self) -> str:
        return self.sink.name if self.sink is not None else "null"

    def emit(self, kind: str, row: dict[str, Any]) -> None:
        """Never blocks on I/O. Fills event_id, schema_version, received_ms and release."""
        self.emit_all(((kind, row),))

    def emit_all(self, events: tuple[tuple[str, dict[str, Any]], ...]) -> None:
        """Several events under one lock (a feed emits its request and its ranking)."""
        if self.sink is None:
            return
        now_ms = int(time.time() * 1000)
        for _, row in events:
            row.setdefault("event_id", f"{random.getrandbits(128):032x}")
            row["schema_version"] = SCHEMA_VERSION
            row["received_ms"] = now_ms
            row.setdefault("ts", now_ms)
            row.setdefault("release", self.release)
        with self._lock:
            room = self.max_buffer - len(self._buf)
            kept = events if room >= len(events) else events[:max(room, 0)]
            lost = len(events) - len(kept)
            self._buf.extend(kept)
            if len(self._buf) >= self.batch:
                self._wake.set()
        if lost:
            self._lost(lost, "buffer_full" if self.sink_up else "sink_down")

    def _lost(self, n: int, reason: str) -> None:
        """Events that will never be written: counted, and reported by the next flush's
        error event (so the lake itself shows the loss)."""
        with self._lock:
            self.dropped += n
            self._unreported[reason] += n
        if self.on_drop is not None:
            self.on_drop(n, reason)

    def lag_seconds(self) -> float:
        """Age of the oldest buffered event (0 when everything is written)."""
        with self._lock:
            if not self._buf:
                return 0.0
            oldest = self._buf[0][1]["received_ms"]
        return max(0.0, time.time() - oldest / 1000)

    def write_now(self, groups: dict[str, list[dict[str, Any]]]) -> None:
        """Synchronous write (for events a client was told are accepted); raises on failure."""
        if self.sink is None:
            return
        now_ms = int(time.time() * 1000)
        for kind, rows in groups.items():
            for row in rows:
                row.setdefault("event_id", f"{random.getrandbits(128):032x}")
                row["schema_version"] = SCHEMA_VERSION
                row["received_ms"] = now_ms
                row.setdefault("release", self.release)
            if rows:
                with self._write_lock:
                    self._write(kind, rows)

    def _run(self) -> None:
        while not self._stop.is_set():
            self._wake.wait(self.flush_s)
            self._wake.clear()
            try:
                self.flush()
            except Exception:
                log.exception("telemetry flush failed")

    def flush(self) -> int:
        with self._lock:
            buf, self._buf = self._buf, []
            drops, self._unreported = self._unreported, defaultdict(int)
        if drops:
            now_ms = int(time.time() * 1000)
            why = ", ".join(f"{n} {reason}" for reason, n in sorted(drops.items()))
            buf.append(("error", {
                "event_id": f"{random.getrandbits(128):032x}", "schema_version": SCHEMA_VERSION,
                "ts": now_ms, "received_ms": now_ms, "release": self.release,
                "route": "telemetry", "status": 0, "code": "telemetry_dropped",
                "message": f"{sum(drops.values())} events dropped ({why})",
                "dropped": sum(drops.values())}))
        if not buf or self.sink is None:
            return 0
        groups: dict[str, list[dict[str, Any]]] = defaultdict(list)
        for kind, row in buf:
            groups[kind].append(row)
        written, refused = 0, set[str]()
        with self._write_lock:
            for kind, rows in groups.items():
                try:  # one kind's failure never costs the others their write
                    written += self._write(kind, rows)
                except Exception as exc:
                    self.failed_batches += 1
                    refused.add(kind)
                    if self.sink_up:
                        self.sink_up = False
                        log.warning("telemetry: %s refused a batch (%s); keeping events to "
                                    "retry, up to %d", self.name, exc, self.max_buffer)
        if refused:  # back in the order they were emitted
            self._requeue([pair for pair in buf if pair[0] in refused])
        elif not self.sink_up and written:
            self.sink_up = True
            log.info("telemetry: %s accepts writes again", self.name)
        return written

    def _requeue(self, pairs: list[tuple[str, dict[str, Any]]]) -> None:
        """Put refused events back in front of newer ones; what finds no room is lost,
        the oldest first."""
        with self._lock:
            room = max(self.max_buffer - len(self._buf), 0)
            kept = pairs[len(pairs) - room:] if room < len(pairs) else pairs
            self._buf[:0] = kept
            lost = len(pairs) - len(kept)
        if lost:
            self._lost(lost, "sink_down")

    def _write(self, kind: str, rows: list[dict[str, Any]]) -> int:
        """One sink write; rows it dead-lettered are counted lost (not in the lake)."""
        assert self.sink is not None
        n = self.sink.write(kind, rows)
        self.written += n
        if n < len(rows):
            self._lost(len(rows) - n, "dead_letter")
        return n

    def close(self) -> None:
        self._stop.set()
        self._wake.set()
        if self._thread is not None:
            self._thread.join(timeout=10)
        self.flush()
        if self.sink is not None:
            self.sink.close()
            log.info("telemetry closed: %d events written to %s, %d dropped", self.written,
                     self.name, self.dropped)
