"""Prometheus metrics of one service instance (its own registry, so tests can run many)."""

from __future__ import annotations

from typing import Any

from prometheus_client import CollectorRegistry, Counter, Gauge, ProcessCollector

from novarank.online.tally import Tally

LATENCY_BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5)


class ServiceMetrics:
    """Call `self.of(metric, *labels)` on hot paths: prometheus_client's `.labels()`
    re-validates and locks on every call; the bound child is memoised here."""

    def of(self, metric: Any, *labels: str) -> Any:
        key = (id(metric), labels)
        child = self._children.get(key)
        if child is None:
            child = self._children[key] = metric.labels(*labels)
        return child

    def __init__(self) -> None:
        self._children: dict[tuple[int, tuple[str, ...]], Any] = {}
        r = self.registry = CollectorRegistry()
        # what every feed answer adds to is a Tally (online/tally.py): no lock per add
        self.request_latency = Tally(
            "novarank_request_duration_seconds", "Request latency by route and cache level",
            ["route", "cache"], buckets=LATENCY_BUCKETS, registry=r)
        self.requests = Tally("novarank_requests_total", "Requests by route and status",
                              ["route", "status"], registry=r)
        self.cache = Tally("novarank_cache_requests_total", "Cache lookups by level and result",
                           ["level", "result"], registry=r)
        self.cache_evictions = Gauge("novarank_cache_evictions", "L1 evictions since start",
                                     registry=r)
        self.cache_bytes = Gauge("novarank_cache_bytes", "L1 bytes in use", registry=r)
        self.cache_entries = Gauge("novarank_cache_entries", "L1 entries", registry=r)
        self.telemetry_sink_up = Gauge("novarank_telemetry_sink_up", "1 while the telemetry "
                                       "sink accepts writes", registry=r)
        self.entries = Gauge("novarank_state_entries", "Entries of an in-process table that "
                             "grows with traffic; each is bounded (docs: README, loss and "
                             "memory bounds)", ["table"], registry=r)
        self.rate_limited = Counter("novarank_rate_limited_total", "Requests refused with "
                                    "429: the caller's budget of a kind was spent", ["kind"],
                                    registry=r)
        self.fallbacks = Counter("novarank_fallback_total", "Responses served by a fallback path",
                                 ["reason"], registry=r)
        self.fill = Tally("novarank_feed_fill_ratio", "Items returned / items asked",
                          buckets=(0.5, 0.8, 0.9, 0.99, 1.0), registry=r)
        self.events = Counter("novarank_events_total", "Engagement events by kind and result",
                              ["kind", "result"], registry=r)
        self.assignments = Tally("novarank_assignments_total", "Feed requests by variant",
                                 ["variant"], registry=r)
        self.telemetry_dropped = Counter("novarank_telemetry_dropped_total",
                                         "Telemetry events never written, by reason: "
                                         "buffer_full, sink_down, dead_letter", ["reason"],
                                         registry=r)
        self.refresh_ahead = Counter("novarank_refresh_ahead_total",
                                     "Feeds re-ranked in the background after engagement",
                                     registry=r)
        self.telemetry_written = Counter("novarank_telemetry_written_total",
                                         "Telemetry events written to the sink", registry=r)
        self.kill_switch = Gauge("novarank_kill_switch", "1 while the kill switch is on",
                                 registry=r)
        self.split = Gauge("novarank_experiment_split_ratio", "Planned traffic share per variant",
                           ["variant"], registry=r)
        self.memory_limit = Gauge("novarank_memory_limit_bytes",
                                  "Memory the process may use (cgroup limit or machine RAM)",
                                  registry=r)
        self.telemetry_lag = Gauge("novarank_telemetry_lag_seconds",
                                   "Age of the oldest telemetry event not yet written",
                                   registry=r)
        ProcessCollector(registry=r)  # process_resident_memory_bytes, cpu, start time
        self.catalog_items = Gauge("novarank_catalog_items", "Items in the live catalog",
                                   registry=r)
        self.release_info = Gauge("novarank_release_info", "Releases being served (stable and "
                                  "canary: 1; replaced: 0)", ["version"], registry=r)
        self.release_requests = Tally("novarank_release_requests_total", "Feed answers by "
                                      "the release they were routed to and outcome",
                                      ["release", "outcome"], registry=r)
        self.l2_up = Gauge("novarank_cache_l2_up", "1 while the shared L2 cache answers (0: "
                           "degraded to L1 and local ranking, or no L2)", registry=r)
        self.store_errors = Counter("novarank_store_errors_total", "Operations on a shared "
                                    "store that failed and were degraded around",
                                    ["store", "op"], registry=r)
        self.thread_restarts = Counter("novarank_thread_restarts_total", "Background loops "
                                       "restarted after an error", ["thread"], registry=r)
        self.trending_capped = Counter("novarank_trending_capped_total", "Engagement weight "
                                       "not added to live trending: over a user's bound",
                                       registry=r)
        self.canary_share = Gauge("novarank_canary_share", "Share of users on the canary "
                                  "release (0 without a rollout)", registry=r)
