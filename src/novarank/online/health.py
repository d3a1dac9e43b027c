"""Whether a shared store answers, as this replica sees it. A change of state is logged
once (not once per request) and counted, so an outage reads as two log lines and a
metric, and the service degrades around it instead of failing requests."""

from __future__ import annotations

import logging
from typing import Any

from novarank.online.metrics import ServiceMetrics

log = logging.getLogger("novarank.service")


class StoreHealth:
    def __init__(self, store: str, metrics: ServiceMetrics, gauge: Any | None = None,
                 degraded: str = "") -> None:
        self.store, self.metrics, self.gauge = store, metrics, gauge
        self.degraded_to = degraded  # what the service does meanwhile, for the log line
        self.up = True
        if gauge is not None:
            gauge.set(1.0)

    def failed(self, op: str, exc: Exception) -> None:
        self.metrics.of(self.metrics.store_errors, self.store, op).inc()
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
