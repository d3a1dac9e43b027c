"""Open-loop HTTP load generator.

Requests are sent on a fixed schedule (i / rate seconds after the start) whatever the
server is doing, and each latency is measured from the *intended* send time, so a slow
server cannot hide behind a queue of its own making (no coordinated omission). Sends
that the generator itself could not make on time are counted as late, never dropped.
"""

from __future__ import annotations

import asyncio
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from hdrh.histogram import HdrHistogram

LATE_AFTER_S = 0.001  # a send more than 1 ms behind schedule is "late"


@dataclass
class LoadResult:
    rate: float
    duration_s: float
    sent: int = 0
    completed: int = 0
    errors: int = 0
    late: int = 0
    statuses: Counter = field(default_factory=Counter)
    headers: Counter = field(default_factory=Counter)  # e.g. counts of a body field value
    histogram: HdrHistogram = field(
        default_factory=lambda: HdrHistogram(1, 60_000_000, 3))  # microseconds

    def percentile_ms(self, q: float) -> float:
        return self.histogram.get_value_at_percentile(q) / 1000.0

    def summary(self) -> dict[str, Any]:
        return {"rate": self.rate, "duration_s": round(self.duration_s, 3), "sent": self.sent,
                "completed": self.completed, "errors": self.errors, "late_sends": self.late,
                "late_ratio": round(self.late / self.sent, 5) if self.sent else 0.0,
                "achieved_rps": round(self.completed / self.duration_s, 1)
                if self.duration_s else 0.0,
                "p50_ms": self.percentile_ms(50), "p95_ms": self.percentile_ms(95),
                "p99_ms": self.percentile_ms(99), "max_ms": self.histogram.get_max_value() / 1e3,
                "statuses": dict(self.statuses), "tags": dict(self.headers)}


async def on_schedule(offsets: Any, task: Callable[[int, float], Any],
                      drain_timeout_s: float = 30.0) -> tuple[int, float]:
    """Start task(i, intended_time) at loop-time start + offsets[i], whatever the earlier
    tasks are doing. Returns (late sends, loop start). A send is late when the generator
    itself could not start it within LATE_AFTER_S of its intended time."""
    loop = asyncio.get_running_loop()
    start = loop.time() + 0.05
    late = 0
    pending: set[asyncio.Task] = set()
    for i, off in enumerate(offsets):
        intended = start + float(off)
        delay = intended - loop.time()
        if delay > 0:
            await asyncio.sleep(delay)
        elif -delay > LATE_AFTER_S:
            late += 1
        t = asyncio.create_task(task(i, intended))
        pending.add(t)
        t.add_done_callback(pending.discard)
    if pending:
        await asyncio.wait(pending, timeout=drain_timeout_s)
    return late, start


async def open_loop(base_url: str, path_for: Callable[[int], str], rate: float,
                    duration_s: float, *, max_requests: int | None = None,
                    connections: int = 64, timeout_s: float = 10.0,
                    tag: Callable[[bytes], str | None] | None = None,
                    headers: dict[str, str] | None = None,
                    record: Callable[[float, float, int | str], None] | None = None
                    ) -> LoadResult:
    """Send GET base_url + path_for(i) at `rate` per second for `duration_s` seconds.
    `record(intended offset s, latency s, status)` sees every answer (time series)."""
    import aiohttp

    n = int(rate * duration_s)
    if max_requests is not None:
        n = min(n, max_requests)
    result = LoadResult(rate=rate, duration_s=0.0)
    conn = aiohttp.TCPConnector(limit=connections, keepalive_timeout=60)
    timeout = aiohttp.ClientTimeout(total=timeout_s)
    async with aiohttp.ClientSession(base_url, connector=conn, timeout=timeout,
                                     headers=headers) as session:
        loop = asyncio.get_running_loop()
        start = loop.time() + 0.05
        pending: set[asyncio.Task] = set()

        async def one(i: int, intended: float) -> None:
            status: int | str = "error"
            try:
                async with session.get(path_for(i)) as resp:
                    body = await resp.read()
                    status = resp.status
                    result.statuses[resp.status] += 1
                    if resp.status >= 500:
                        result.errors += 1
                    elif tag is not None:
                        label = tag(body)
                        if label:
                            result.headers[label] += 1
            except (TimeoutError, aiohttp.ClientError):
                result.errors += 1
                result.statuses["error"] += 1
            latency_us = max(1, int((loop.time() - intended) * 1e6))
            result.histogram.record_value(min(latency_us, 60_000_000))
            result.completed += 1
            if record is not None:
                record(intended - start, latency_us / 1e6, status)

        for i in range(n):
            intended = start + i / rate
            delay = intended - loop.time()
            if delay > 0:
                await asyncio.sleep(delay)
            elif -delay > LATE_AFTER_S:
                result.late += 1
            task = asyncio.create_task(one(i, intended))
            pending.add(task)
            task.add_done_callback(pending.discard)
            result.sent += 1
        if pending:
            await asyncio.wait(pending, timeout=timeout_s + 1)
        result.duration_s = loop.time() - start
    return result


async def closed_loop(base_url: str, path_for: Callable[[int], str], concurrency: int,
                      duration_s: float, headers: dict[str, str] | None = None
                      ) -> dict[str, float]:
    """Capacity: `concurrency` clients each sending back-to-back; returns requests/s."""
    import aiohttp

    done = 0
    errors = 0
    stop_at = time.perf_counter() + duration_s
    conn = aiohttp.TCPConnector(limit=concurrency)
    async with aiohttp.ClientSession(base_url, connector=conn, headers=headers) as session:
        async def worker(w: int) -> None:
            nonlocal done, errors
            i = w
            while time.perf_counter() < stop_at:
                async with session.get(path_for(i)) as resp:
                    await resp.read()
                    if resp.status != 200:
                        errors += 1
                done += 1
                i += concurrency

        t0 = time.perf_counter()
        await asyncio.gather(*(worker(w) for w in range(concurrency)))
        elapsed = time.perf_counter() - t0
    return {"rps": round(done / elapsed, 1), "requests": done, "errors": errors,
            "seconds": round(elapsed, 2)}
