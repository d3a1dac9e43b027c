"""`novarank ingest`: drain the telemetry Redis Stream into the Parquet lake.

At-least-once: messages are acknowledged (XACK) only after their Parquet part is renamed
into place. A consumer that dies holding messages leaves them pending; any consumer
claims them after `claim_idle_ms` (XAUTOCLAIM) and writes them. Parts are named by the
ids of the messages they hold, so a batch re-delivered after a crash between the write
and the ack replaces its parts instead of adding a second copy, whichever process writes
it. Duplicates inside the stream (a replica's retried XADD) are dropped by event_id within
a bounded window; the rollups count distinct event_ids, so what slips through (a claim
that regroups two dead consumers' batches) never inflates a metric.
"""

from __future__ import annotations

import hashlib
import logging
import os
import socket
import time
from collections import OrderedDict, defaultdict
from dataclasses import dataclass, field
from typing import Any

import orjson

from novarank.telemetry.sinks import LakeWriter

log = logging.getLogger("novarank.telemetry")


@dataclass
class IngestStats:
    messages: int = 0
    events: int = 0
    duplicates: int = 0
    claimed: int = 0
    reconnects: int = 0
    dead_lettered: int = 0  # rows the lake could not hold (kept in events/_deadletter/)
    by_kind: dict[str, int] = field(default_factory=lambda: defaultdict(int))

    def to_dict(self) -> dict[str, Any]:
        return {"messages": self.messages, "events": self.events, "duplicates": self.duplicates,
                "claimed": self.claimed, "reconnects": self.reconnects,
                "dead_lettered": self.dead_lettered,
                "by_kind": dict(self.by_kind)}


class Ingester:
    def __init__(self, redis_url: str, lake: LakeWriter, stream: str = "nr:telemetry",
                 group: str = "nr-ingest", consumer: str | None = None,
                 claim_idle_ms: int = 30_000, dedupe_window: int = 2_000_000) -> None:
        import redis

        self._r = redis.Redis.from_url(redis_url, socket_timeout=10.0)
        self.lake, self.stream, self.group = lake, stream, group
        self.consumer = consumer or f"{socket.gethostname()}-{os.getpid()}"
        self.claim_idle_ms = claim_idle_ms
        self._seen: OrderedDict[str, None] = OrderedDict()
        self._window = dedupe_window
        self.stats = IngestStats()
        self._ensure_group()

    def _ensure_group(self) -> None:
        """The consumer group (again, after a Redis restart without persistence)."""
        try:
            self._r.xgroup_create(self.stream, self.group, id="0", mkstream=True)
        except Exception as exc:
            if "BUSYGROUP" not in str(exc):
                raise

    def _fresh(self, event_id: str) -> bool:
        if event_id in self._seen:
            return False
        self._seen[event_id] = None
        if len(self._seen) > self._window:
            self._seen.popitem(last=False)
        return True

    def _process(self, messages: list[tuple[bytes, dict[bytes, bytes]]]) -> int:
        # named by the batch's message ids: the same batch again is the same parts
        stem = "m" + hashlib.sha256(b",".join(mid for mid, _ in messages)).hexdigest()[:24]
        groups: dict[str, list[dict[str, Any]]] = defaultdict(list)
        for _, fields in messages:
            kind = fields[b"kind"].decode()
            for row in orjson.loads(fields[b"rows"]):
                if self._fresh(row["event_id"]):
                    groups[kind].append(row)
                else:
                    self.stats.duplicates += 1
        for kind, rows in groups.items():
            n = self.lake.write(kind, rows, stem)  # durable (renamed into place) before the ack
            self.stats.by_kind[kind] += n
            self.stats.events += n
            self.stats.dead_lettered += len(rows) - n
        if messages:
            self._r.xack(self.stream, self.group, *[mid for mid, _ in messages])
        self.stats.messages += len(messages)
        return len(messages)

    def run_once(self, count: int = 200, block_ms: int = 500) -> int:
        """Claim abandoned messages, then read new ones; returns messages processed."""
        n = 0
        _, claimed, _ = self._r.xautoclaim(self.stream, self.group, self.consumer,
                                           min_idle_time=self.claim_idle_ms, start_id="0-0",
                                           count=count)
        if claimed:
            self.stats.claimed += len(claimed)
            n += self._process(claimed)
        resp = self._r.xreadgroup(self.group, self.consumer, {self.stream: ">"}, count=count,
                                  block=block_ms)
        for _, messages in resp or []:
            n += self._process(messages)
        return n

    def run(self, seconds: float | None = None, until_idle: bool = False) -> IngestStats:
        """Drain until the deadline. Redis going away is waited out (backoff up to 5 s,
        logged once per outage), never a reason to exit. `until_idle` stops when nothing
        new arrives and nothing is pending (a dead consumer's messages are claimed first)."""
        import redis

        deadline = None if seconds is None else time.monotonic() + seconds
        backoff, down = 0.5, False
        while deadline is None or time.monotonic() < deadline:
            try:
                if down:
                    self._ensure_group()
                    log.info("ingest: Redis reachable again")
                    down, backoff = False, 0.5
                if self.run_once() == 0 and until_idle and self.pending() == 0:
                    break
            except redis.ResponseError as exc:
                if "NOGROUP" not in str(exc):
                    raise
                self._ensure_group()  # Redis restarted empty: the group is gone
            except (redis.ConnectionError, redis.TimeoutError, OSError) as exc:
                if not down:
                    log.warning("ingest: Redis unreachable (%s); waiting for it", exc)
                down = True
                self.stats.reconnects += 1
                time.sleep(backoff)
                backoff = min(backoff * 2, 5.0)
        return self.stats

    def pending(self) -> int:
        return int(self._r.xpending(self.stream, self.group)["pending"])
