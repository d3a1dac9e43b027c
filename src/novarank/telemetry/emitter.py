"""The request path's only telemetry call: `emit()` appends to a bounded buffer and returns.

A background thread flushes by size (`batch`) and time (`flush_s`). A batch the sink
refuses (the stream is down) goes back to the front of the buffer and is written, in
order, once the sink answers again, so an outage shorter than the buffer loses nothing.
An event that finds no room is dropped and counted by reason (`buffer_full`, or
`sink_down` while the sink refuses writes; `dead_letter` for rows the lake could not
hold), and the next write that succeeds carries an `error` event saying how many were
lost and why, so the lake itself shows the loss. `close()` (on SIGTERM) flushes.

An answered request (`emit_answered`) is one buffer entry holding its two events, the
`request` and the `ranking` (telemetry/answered.py): a sink that takes tables (the lake)
gets them built a column at a time; any other sink, or a batch the columns cannot hold,
gets them as rows.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import defaultdict
from collections.abc import Callable
from typing import Any

from novarank.ids import new_id
from novarank.telemetry import answered
from novarank.telemetry.answered import Answered
from novarank.telemetry.schemas import SCHEMA_VERSION
from novarank.telemetry.sinks import Sink

ANSWERED = "answered"  # the buffer's kind for an Answered: two events in one entry

log = logging.getLogger("novarank.telemetry")


class Emitter:
    def __init__(self, sink: Sink | None, *, batch: int = 5_000, max_buffer: int = 200_000,
                 flush_s: float = 1.0, release: str = "",
                 on_drop: Callable[[int, str], None] | None = None) -> None:
        self.sink = sink
        self.batch, self.max_buffer, self.flush_s = batch, max_buffer, flush_s
        self.release = release
        self.on_drop = on_drop
        self._buf: list[tuple[str, Any]] = []  # (kind, row), or (ANSWERED, Answered)
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
        if self.sink is None:
            return
        now_ms = int(time.time() * 1000)
        row.setdefault("event_id", new_id())
        row["schema_version"] = SCHEMA_VERSION
        row["received_ms"] = now_ms
        row.setdefault("ts", now_ms)
        row.setdefault("release", self.release)
        self._append(kind, row, 1)

    def emit_answered(self, record: Answered) -> None:
        """An answered request's two events, `request` and `ranking`, as one entry: the
        request path only appends (a cached feed's cheapest way to keep both)."""
        if self.sink is not None:
            self._append(ANSWERED, record, 2)

    def _append(self, kind: str, entry: Any, events: int) -> None:
        with self._lock:
            kept = len(self._buf) < self.max_buffer
            if kept:
                self._buf.append((kind, entry))
            full = len(self._buf) >= self.batch
        if full and not self._wake.is_set():  # (set() takes a lock and notifies)
            self._wake.set()
        if not kept:
            self._lost(events, "buffer_full" if self.sink_up else "sink_down")

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
            kind, oldest = self._buf[0]
            received = oldest.ts if kind == ANSWERED else oldest["received_ms"]
        return max(0.0, time.time() - received / 1000)

    def write_now(self, groups: dict[str, list[dict[str, Any]]]) -> None:
        """Synchronous write (for events a client was told are accepted); raises on failure."""
        if self.sink is None:
            return
        now_ms = int(time.time() * 1000)
        for kind, rows in groups.items():
            for row in rows:
                row.setdefault("event_id", new_id())
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
                "event_id": new_id(), "schema_version": SCHEMA_VERSION,
                "ts": now_ms, "received_ms": now_ms, "release": self.release,
                "route": "telemetry", "status": 0, "code": "telemetry_dropped",
                "message": f"{sum(drops.values())} events dropped ({why})",
                "dropped": sum(drops.values())}))
        if not buf or self.sink is None:
            return 0
        groups: dict[str, list[Any]] = defaultdict(list)
        for kind, row in buf:
            groups[kind].append(row)
        answers = self._answered(groups.pop(ANSWERED, []))
        written, refused, answers_refused = 0, set[str](), dict[str, list[dict[str, Any]]]()
        with self._write_lock:
            plain = len(groups)  # the buffer's rows by kind, then the answered batch
            for n, (kind, rows) in enumerate([*groups.items(), *answers]):
                try:  # one kind's failure never costs the others their write
                    written += self._write(kind, rows)
                except Exception as exc:
                    self.failed_batches += 1
                    if n < plain:
                        refused.add(kind)
                    else:  # an answered batch's: its rows wait, with their event ids
                        answers_refused[kind] = rows if isinstance(rows, list) else (
                            rows.to_pylist())
                    if self.sink_up:
                        self.sink_up = False
                        log.warning("telemetry: %s refused a batch (%s); keeping events to "
                                    "retry, up to %d", self.name, exc, self.max_buffer)
        if refused or answers_refused:
            self._requeue(self._in_order(buf, refused, answers_refused))
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

    def _answered(self, records: list[Answered]) -> list[tuple[str, Any]]:
        """Answered requests as the `request` and `ranking` tables when the sink takes
        tables; else (or when a value does not fit its column) as rows with event ids."""
        if not records:
            return []
        if hasattr(self.sink, "write_table"):
            try:
                return list(answered.tables(records).items())
            except Exception as exc:  # any: outside the writes' try, it would lose the batch
                log.warning("telemetry: %d answered requests go as rows (%s: %s)",
                            len(records), type(exc).__name__, exc)
        out = answered.rows(records)
        for kind_rows in out.values():
            for row in kind_rows:
                row["event_id"] = new_id()
        return list(out.items())

    @staticmethod
    def _in_order(buf: list[tuple[str, Any]], refused: set[str],
                  answers: dict[str, list[dict[str, Any]]]) -> list[tuple[str, Any]]:
        """The refused events as rows, in the order they were emitted: a refused kind's
        rows, and an answered request's refused events where that request stood."""
        out, nth = [], 0
        for kind, entry in buf:
            if kind == ANSWERED:
                out += [(k, rows[nth]) for k, rows in answers.items()]
                nth += 1
            elif kind in refused:
                out.append((kind, entry))
        return out

    def _write(self, kind: str, rows: Any) -> int:
        """One sink write of rows (or a table); rows it dead-lettered are counted lost."""
        assert self.sink is not None
        if isinstance(rows, list):
            n, sent = self.sink.write(kind, rows), len(rows)
        else:
            n, sent = self.sink.write_table(kind, rows), rows.num_rows  # type: ignore[attr-defined]
        self.written += n
        if n < sent:
            self._lost(sent - n, "dead_letter")
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
