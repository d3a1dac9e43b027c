"""Open-loop HTTP load generator.

Requests are sent on a fixed schedule (i / rate seconds after the start) whatever the
server is doing, and each latency is measured from the *intended* send time, so a slow
server cannot hide behind a queue of its own making (no coordinated omission). Sends
that the generator itself could not make on time are counted as late, never dropped.
Times are perf_counter's and each send waits for its moment to the microsecond (the loop's
timers wake up to a millisecond late), and answers are parsed by httptools on plain
keep-alive connections, so the generator adds little of its own to a latency: a bare
app's median at 1,000 req/s reads ~0.2 ms (bench_floor.py, its floor column).
"""

from __future__ import annotations

import asyncio
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

import httptools
from hdrh.histogram import HdrHistogram

LATE_AFTER_S = 0.001  # a send more than 1 ms behind schedule is "late"
SPIN_S = 0.0015  # the last stretch before a send, spun rather than slept


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


class _Connection(asyncio.Protocol):
    """One keep-alive HTTP/1.1 connection, its answers parsed by httptools (the parser
    uvicorn uses): a request costs the generator a write and a parse, ~20 µs, so the
    latency it measures is the server's and not its own."""

    def __init__(self) -> None:
        self.transport: asyncio.Transport | None = None
        self.parser = httptools.HttpResponseParser(self)
        self.answer: asyncio.Future[tuple[int, bytes]] | None = None
        self.status, self.body, self.reusable = 0, bytearray(), True

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self.transport = transport

    def data_received(self, data: bytes) -> None:
        try:
            self.parser.feed_data(data)
        except httptools.HttpParserError as exc:
            self._fail(exc)

    def on_headers_complete(self) -> None:
        self.status = self.parser.get_status_code()
        self.reusable = self.parser.should_keep_alive()

    def on_body(self, body: bytes) -> None:
        self.body += body

    def on_message_complete(self) -> None:
        answer, self.answer = self.answer, None
        body, self.body = bytes(self.body), bytearray()
        if answer is not None and not answer.done():
            answer.set_result((self.status, body))

    def connection_lost(self, exc: Exception | None) -> None:
        self.reusable = False
        self._fail(exc or ConnectionError("the server closed the connection"))

    def _fail(self, exc: BaseException) -> None:
        self.reusable = False
        answer, self.answer = self.answer, None
        if answer is not None and not answer.done():
            answer.set_exception(exc)

    def send(self, raw: bytes) -> asyncio.Future[tuple[int, bytes]]:
        assert self.transport is not None
        self.answer = asyncio.get_running_loop().create_future()
        self.transport.write(raw)
        return self.answer

    def close(self) -> None:
        if self.transport is not None:
            self.transport.close()


def _reusable(idle: list[_Connection]) -> _Connection | None:
    """The most recently used idle connection the server has not closed meanwhile (a
    keep-alive timeout closes those that sat idle)."""
    while idle:
        conn = idle.pop()
        if conn.reusable and conn.transport is not None and not conn.transport.is_closing():
            return conn
        conn.close()
    return None


async def on_time(intended: float) -> None:
    """Wait until perf_counter() reaches `intended`: the loop's timers wake up to a
    millisecond late, so the last millisecond is spun (yielding to answers meanwhile)."""
    delay = intended - time.perf_counter()
    if delay > SPIN_S:
        await asyncio.sleep(delay - SPIN_S)
    while time.perf_counter() < intended:
        await asyncio.sleep(0)


async def open_loop(base_url: str, path_for: Callable[[int], str], rate: float,
                    duration_s: float, *, max_requests: int | None = None,
                    connections: int = 64, timeout_s: float = 10.0,
                    tag: Callable[[bytes], str | None] | None = None,
                    headers: dict[str, str] | None = None,
                    record: Callable[[float, float, int | str], None] | None = None
                    ) -> LoadResult:
    """Send GET base_url + path_for(i) at `rate` per second for `duration_s` seconds, over
    at most `connections` keep-alive connections (a request waits for one when all are
    busy, and that wait is latency). `record(intended offset s, latency s, status)` sees
    every answer (time series)."""
    url = urlsplit(base_url)
    if url.scheme != "http" or not url.hostname:
        raise ValueError(f"base_url: an http:// URL with a host, got {base_url!r}")
    host, port = url.hostname, url.port or 80
    head = "".join(f"{name}: {value}\r\n" for name, value in (headers or {}).items())
    n = int(rate * duration_s)
    if max_requests is not None:
        n = min(n, max_requests)
    result = LoadResult(rate=rate, duration_s=0.0)
    loop = asyncio.get_running_loop()
    idle: list[_Connection] = []
    slots = asyncio.Semaphore(connections)
    start = time.perf_counter() + 0.05
    pending: set[asyncio.Task] = set()

    async def one(i: int, intended: float) -> None:
        status: int | str = "error"
        async with slots:
            conn = _reusable(idle)
            raw = f"GET {path_for(i)} HTTP/1.1\r\nHost: {url.netloc}\r\n{head}\r\n".encode()
            try:
                if conn is not None:
                    try:
                        code, body = await asyncio.wait_for(conn.send(raw), timeout_s)
                    except ConnectionError:  # the server closed it idle: once, afresh
                        conn.close()
                        conn = None
                if conn is None:
                    _, conn = await asyncio.wait_for(
                        loop.create_connection(_Connection, host, port), timeout_s)
                    code, body = await asyncio.wait_for(conn.send(raw), timeout_s)
                status = code
                result.statuses[code] += 1
                if code >= 500:
                    result.errors += 1
                elif tag is not None:
                    label = tag(body)
                    if label:
                        result.headers[label] += 1
            except (TimeoutError, OSError, httptools.HttpParserError):
                result.errors += 1
                result.statuses["error"] += 1
            if conn is not None:
                if conn.reusable and conn.answer is None:
                    idle.append(conn)
                else:
                    conn.close()
        latency_us = max(1, int((time.perf_counter() - intended) * 1e6))
        result.histogram.record_value(min(latency_us, 60_000_000))
        result.completed += 1
        if record is not None:
            record(intended - start, latency_us / 1e6, status)

    try:
        for i in range(n):
            intended = start + i / rate
            await on_time(intended)
            if time.perf_counter() - intended > LATE_AFTER_S:
                result.late += 1
            task = asyncio.create_task(one(i, intended))
            pending.add(task)
            task.add_done_callback(pending.discard)
            result.sent += 1
        if pending:
            await asyncio.wait(pending, timeout=timeout_s + 1)
        result.duration_s = time.perf_counter() - start
    finally:
        for conn in idle:
            conn.close()
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
