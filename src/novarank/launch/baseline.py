"""The phased baseline collection: drive a service with simulated sessions on the
schedule, collect per-interval numbers from the client side and from /metrics, and judge
them against the launch guide's targets."""

from __future__ import annotations

import asyncio
import contextlib
import re
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from hdrh.histogram import HdrHistogram

from novarank.launch.loadgen import on_schedule
from novarank.launch.schedule import PHASES, Schedule
from novarank.launch.simulator import Simulator

HOUR = 3_600.0


def _hist() -> HdrHistogram:
    return HdrHistogram(1, 120_000_000, 3)  # microseconds, 3 significant digits


@dataclass
class Interval:
    """One simulated hour (or one bucket of a shorter collection)."""

    index: int
    start_sim_s: float
    phase: str
    requests: int = 0
    errors: int = 0
    fallbacks: int = 0
    levels: Counter = field(default_factory=Counter)  # l1 / l2 / miss, organic requests
    probes: int = 0
    hit: HdrHistogram = field(default_factory=_hist)
    miss: HdrHistogram = field(default_factory=_hist)
    all: HdrHistogram = field(default_factory=_hist)
    server: dict[str, float] = field(default_factory=dict)  # scraped from /metrics

    def record(self, latency_us: int, level: str | None, ok: bool, fallback: bool,
               probe: bool = False) -> None:
        self.requests += 1
        v = max(1, min(latency_us, 120_000_000))
        self.all.record_value(v)
        if not ok:
            self.errors += 1
            return
        if probe:  # forced misses: latency only, never in the hit rate
            self.probes += 1
        else:
            self.levels[level or "unknown"] += 1
        if fallback:
            self.fallbacks += 1
        (self.hit if level in ("l1", "l2") else self.miss).record_value(v)

    def summary(self, wall_s: float) -> dict[str, Any]:
        def p(h: HdrHistogram, q: float) -> float | None:
            return h.get_value_at_percentile(q) / 1000 if h.get_total_count() else None

        lookups = sum(self.levels[x] for x in ("l1", "l2", "miss"))
        return {"index": self.index, "start_h": round(self.start_sim_s / HOUR, 3),
                "phase": self.phase, "requests": self.requests,
                "rps": round(self.requests / wall_s, 2) if wall_s else None,
                "p50_ms": p(self.all, 50), "p95_ms": p(self.all, 95), "p99_ms": p(self.all, 99),
                "hit_p50_ms": p(self.hit, 50), "hit_p95_ms": p(self.hit, 95),
                "hit_p99_ms": p(self.hit, 99), "miss_p50_ms": p(self.miss, 50),
                "miss_p95_ms": p(self.miss, 95), "miss_p99_ms": p(self.miss, 99),
                "hits": self.hit.get_total_count(), "misses": self.miss.get_total_count(),
                "l1": self.levels["l1"], "l2": self.levels["l2"], "miss": self.levels["miss"],
                "cache_hit_rate": (self.levels["l1"] + self.levels["l2"]) / lookups
                if lookups else None,
                "error_rate": self.errors / self.requests if self.requests else None,
                "errors": self.errors, "fallbacks": self.fallbacks, "probes": self.probes,
                "fallback_rate": self.fallbacks / self.requests if self.requests else None,
                **self.server}


@dataclass
class BaselineRun:
    schedule: Schedule
    intervals: list[Interval]
    late_sends: int
    scheduled: int
    uploads: int
    uploads_shown: int
    started_at: float
    wall_s: float
    events_posted: int = 0
    warm: dict[str, Any] | None = None


_METRIC = re.compile(r"^(\w+)(?:\{[^}]*\})?\s+([-+0-9.eE]+|NaN)$")


def parse_metrics(text: str) -> dict[str, float]:
    """Samples of the Prometheus text format by name, a labelled family summed over its
    labels (the dropped-telemetry count over its reasons)."""
    out: dict[str, float] = {}
    for line in text.splitlines():
        m = None if line.startswith("#") else _METRIC.match(line.strip())
        if m:
            out[m.group(1)] = out.get(m.group(1), 0.0) + float(m.group(2))
    return out


async def run(url: str, schedule: Schedule, sim: Simulator, *, admin_token: str | None = None,
              api_key: str | None = None,
              bucket_sim_s: float | None = None, uploads_per_sim_hour: float = 2.0, k: int = 10,
              connections: int = 128, probe_share: float = 0.02,
              on_tick: Callable[[dict[str, Any]], None] | None = None) -> BaselineRun:
    import aiohttp

    bucket_sim_s = bucket_sim_s or schedule.duration_s / 24  # an hour of a 24 h collection
    n_buckets = max(1, round(schedule.duration_s / bucket_sim_s))
    bucket_wall = schedule.wall_s / n_buckets
    intervals = [Interval(b, b * bucket_sim_s, schedule.phase_at(b * bucket_sim_s).name)
                 for b in range(n_buckets)]
    offsets = schedule.arrivals()
    uploads_due = int(uploads_per_sim_hour * schedule.duration_s / HOUR)
    upload_at = {int(j * len(offsets) / max(uploads_due, 1)) for j in range(uploads_due)}
    state = {"posted": 0, "uploads": 0, "uploads_shown": set()}
    headers = {"Authorization": f"Bearer {admin_token}"} if admin_token else {}
    conn = aiohttp.TCPConnector(limit=connections)
    timeout = aiohttp.ClientTimeout(total=30)
    key = api_key or admin_token  # the traffic's key (read, events, catalog)
    keyed = {"Authorization": f"Bearer {key}"} if key else {}
    async with aiohttp.ClientSession(url, connector=conn, timeout=timeout,
                                     headers=keyed) as http:
        warm = None
        if admin_token:  # phase 1 initialises the cache with the warm plan, like the guide
            async with http.post("/v1/admin/cache/warm", headers=headers,
                                 timeout=aiohttp.ClientTimeout(total=900)) as r:
                warm = await r.json() if r.status == 200 else {"status": r.status}
        loop = asyncio.get_running_loop()
        started = time.time()
        stop = asyncio.Event()
        start_box: dict[str, float] = {}

        async def scrape() -> None:
            while not stop.is_set():
                try:
                    async with http.get("/metrics") as r:
                        m = parse_metrics(await r.text())
                except (TimeoutError, aiohttp.ClientError):
                    m = {}
                if "start" in start_box:
                    b = min(int((loop.time() - start_box["start"]) / bucket_wall), n_buckets - 1)
                    srv = intervals[max(b, 0)].server
                    if m:
                        srv["rss_mb"] = round(m.get("process_resident_memory_bytes", 0) / 2**20,
                                              1)
                        srv["cpu_s"] = m.get("process_cpu_seconds_total")
                        srv["process_start"] = m.get("process_start_time_seconds")
                        srv["telemetry_lag_s"] = m.get("novarank_telemetry_lag_seconds")
                        srv["telemetry_dropped"] = m.get("novarank_telemetry_dropped_total")
                    else:
                        srv["scrape_failures"] = srv.get("scrape_failures", 0) + 1
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(stop.wait(), timeout=min(1.0, bucket_wall / 2))

        async def session(i: int, intended: float) -> None:
            if "start" not in start_box:
                start_box["start"] = intended - float(offsets[i])
            b = min(int(float(offsets[i]) / bucket_wall), n_buckets - 1)
            if i in upload_at:
                item_id, body = sim.new_upload(int(time.time()))
                try:
                    async with http.put(f"/v1/items/{item_id}", json=body) as r:
                        await r.read()
                        state["uploads"] += r.status == 200
                except (TimeoutError, aiohttp.ClientError):
                    pass
            user = sim.pick_user()
            # a small share of probes re-rank on purpose (Cache-Control: no-cache), so the
            # miss path is measured under the same load even when the cache serves everyone
            probe = bool(admin_token) and (i % max(1, round(1 / probe_share)) == 7
                                           if probe_share > 0 else False)
            hdrs = {**headers, "Cache-Control": "no-cache"} if probe else None
            try:
                async with http.get(f"/v1/users/{user.user_id}/feed", params={"k": k},
                                    headers=hdrs) as r:
                    body = await r.json(content_type=None)
                    ok = r.status < 500
            except (TimeoutError, aiohttp.ClientError, ValueError):
                body, ok = {}, False
            lat_us = int((loop.time() - intended) * 1e6)
            intervals[b].record(lat_us, body.get("cache"), ok and "items" in body,
                                bool(body.get("fallback")), probe)
            if not (ok and "items" in body):
                return
            items = [it["item_id"] for it in body["items"]]
            state["uploads_shown"].update(set(items) & sim.uploads)
            events = sim.react(user, items, body.get("request_id"))
            try:
                async with http.post("/v1/events", json=events) as r:
                    await r.read()
                    state["posted"] += len(events) if r.status == 200 else 0
            except (TimeoutError, aiohttp.ClientError):
                pass
            if on_tick and i % 50 == 0:
                on_tick({"i": i, "of": len(offsets), "bucket": b, "interval": intervals[b]})

        scraper = asyncio.create_task(scrape())
        late, _ = await on_schedule(offsets, session)
        stop.set()
        await scraper
    return BaselineRun(schedule, intervals, late, len(offsets), state["uploads"],
                       len(state["uploads_shown"]), started, time.time() - started,
                       state["posted"], warm)


# ---- judging ------------------------------------------------------------------------------
@dataclass(frozen=True)
class Target:
    name: str
    metric: str
    op: str
    threshold: float
    min_samples: int
    sample_key: str


TARGETS = (
    Target("Cache hit rate", "cache_hit_rate", ">=", 0.95, 200, "lookups"),
    Target("API latency p95 (cache hit)", "hit_p95_ms", "<=", 100.0, 200, "hits"),
    Target("API latency p95 (cache miss)", "miss_p95_ms", "<=", 300.0, 50, "misses"),
    Target("Error rate", "error_rate", "<", 0.001, 1000, "requests"),
    Target("Pod restarts", "restarts", "<=", 0, 2, "scrapes"),
)


def aggregate(run: BaselineRun, indices: list[int]) -> dict[str, Any]:
    """Merge intervals (histograms merge exactly) into one window's numbers."""
    hit, miss, all_ = _hist(), _hist(), _hist()
    levels: Counter = Counter()
    req = err = fb = 0
    starts: list[float] = []
    for i in indices:
        iv = run.intervals[i]
        hit.add(iv.hit)
        miss.add(iv.miss)
        all_.add(iv.all)
        levels.update(iv.levels)
        req, err, fb = req + iv.requests, err + iv.errors, fb + iv.fallbacks
        if iv.server.get("process_start"):
            starts.append(iv.server["process_start"])

    def p(h: HdrHistogram, q: float) -> float | None:
        return h.get_value_at_percentile(q) / 1000 if h.get_total_count() else None

    lookups = levels["l1"] + levels["l2"] + levels["miss"]
    return {"requests": req, "errors": err, "fallbacks": fb, "lookups": lookups,
            "hits": hit.get_total_count(), "misses": miss.get_total_count(),
            "cache_hit_rate": (levels["l1"] + levels["l2"]) / lookups if lookups else None,
            "hit_p95_ms": p(hit, 95), "miss_p95_ms": p(miss, 95), "p95_ms": p(all_, 95),
            "p99_ms": p(all_, 99), "error_rate": err / req if req else None,
            "restarts": len(set(starts)) - 1 if starts else None, "scrapes": len(starts),
            "l1": levels["l1"], "l2": levels["l2"], "miss": levels["miss"]}


def judge(values: dict[str, Any], target: Target) -> dict[str, Any]:
    v, n = values.get(target.metric), values.get(target.sample_key) or 0
    if v is None or n < target.min_samples:
        verdict = "inconclusive"
    else:
        verdict = "pass" if {">=": v >= target.threshold, "<=": v <= target.threshold,
                             "<": v < target.threshold}[target.op] else "fail"
    return {"target": target.name, "objective": f"{target.op} {target.threshold:g}",
            "value": v, "samples": n, "min_samples": target.min_samples, "verdict": verdict}


def windows(run: BaselineRun) -> dict[str, list[int]]:
    """Each phase's intervals, plus the judged window: everything after warm-up."""
    out: dict[str, list[int]] = {p.name: [] for p in PHASES}
    for iv in run.intervals:
        out[iv.phase].append(iv.index)
    out["after warm-up (phases 2-4)"] = [iv.index for iv in run.intervals
                                         if iv.phase != PHASES[0].name]
    return out
