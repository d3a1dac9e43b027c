"""Whether a shared store answers, as this replica sees it, and the one way the service
calls a store it can do without. While the store is down a call is skipped (its default
returned) and the store is probed again every `retry_s`, so an outage costs one failed
call per second, not one per request. A change of state is logged once and counted, so an
outage reads as two log lines and a metric."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from typing import Any, TypeVar

from novarank.errors import StoreUnavailable
from novarank.online.metrics import ServiceMetrics

log = logging.getLogger("novarank.service")
T = TypeVar("T")


class StoreHealth:
    def __init__(self, store: str, metrics: ServiceMetrics, gauge: Any | None = None,
                 degraded: str = "", retry_s: float = 1.0) -> None:
        self.store, self.metrics, self.gauge = store, metrics, gauge
        self.degraded_to = degraded  # what the service does meanwhile, for the log line
        self.retry_s = retry_s
        self.up = True
        self._retry_at = 0.0
        if gauge is not None:
            gauge.set(1.0)

    def call(self, op: str, fn: Callable[[], T], default: T) -> T:
        """`fn()`, or `default` when the store is down (skipped, or failing now)."""
        if not self.up and time.monotonic() < self._retry_at:
            self.metrics.of(self.metrics.store_errors, self.store, op).inc()
            return default
        try:
            out = fn()
        except StoreUnavailable as exc:
            self.failed(op, exc)
            return default
        self.ok()
        return out

    def failed(self, op: str, exc: Exception) -> None:
        self.metrics.of(self.metrics.store_errors, self.store, op).inc()
        self._retry_at = time.monotonic() + self.retry_s
        if self.up:
            self.up = False
            if self.gauge is not None:
                self.gauge.set(0.0)
            log.warning("%s unreachable (%s): %s", self.store, exc, self.degraded_to)

    def ok(self) -> None:
        if not self.up:
            self.up = True
            if self.gauge is not None:
                self.gauge.set(1.0)
            log.info("%s reachable again", self.store)
