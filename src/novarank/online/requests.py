"""How an answered request is observed: its latency and fill in the metrics and, with a
sink, the request and ranking events that impressions and clicks join back to."""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from novarank.errors import InputError
from novarank.online.metrics import ServiceMetrics
from novarank.telemetry.answered import Answered
from novarank.telemetry.emitter import Emitter
from novarank.telemetry.schemas import user_key

if TYPE_CHECKING:
    from novarank.online.window import Window
    from novarank.ranking.explore import Exploration


def check_k(k: int, limit: int) -> None:
    if not 1 <= k <= limit:
        raise InputError("k", f"must be between 1 and {limit}, got {k}")


@dataclass(frozen=True, slots=True)
class Explored:
    """A first page served with exploration on: the ranker's top window and epsilon, and
    what a replay of that ranking needs besides the release (`parity.py`): when it was
    ranked, the live engagement and trending it read, the weights, and each signal's
    contribution summed over the window (to name which signal drifts)."""

    window: list[str]
    epsilon: float
    explored: bool
    ranked_at: int | None  # the window's ranking time (unix s): what a replay ranks at
    inputs: dict[str, Any] | None = None  # Window.meta["inputs"] (online/window.py)
    signals: list[float] | None = None

    @classmethod
    def of(cls, window: Window, top: list[str], exploration: Exploration,
           drawn: bool) -> Explored:
        rows = window.reasons[: exploration.window]
        return cls(top, exploration.epsilon, drawn, window.meta.get("ranked_at"),
                   window.meta.get("inputs"), [round(float(x), 5) for x in rows.sum(0)])

    def fields(self) -> dict[str, Any]:
        out: dict[str, Any] = {"window": self.window, "epsilon": self.epsilon,
                               "explored": self.explored, "ranked_at": self.ranked_at,
                               "signals": self.signals}
        if self.inputs is not None:
            live = self.inputs["live"]
            out.update(live_events=[e for e, _ in live], live_items=[i for _, i in live],
                       trending_id=self.inputs["trending"],
                       weights=self.inputs["weights"], forgotten=self.inputs["forgotten"])
        return out


class RequestLog:
    def __init__(self, metrics: ServiceMetrics, events: Emitter) -> None:
        self.metrics, self.events = metrics, events

    def observe(self, route: str, level: str, t0: float, k: int, n: int) -> None:
        elapsed = time.perf_counter() - t0
        self.metrics.of(self.metrics.request_latency, route, level).observe(elapsed)
        self.metrics.fill.observe(n / k if k else 1.0)

    def emit(self, route: str, request_id: str, user_id: str, variant: str, level: str,
             k: int, items: Sequence[str], t0: float, release: str | None = None,
             cohort: str | None = None, explore: Explored | None = None,
             teams: Sequence[int] | None = None) -> None:
        """The request and its ranking; `release` defaults to the stable one; `cohort` is
        the user's (feeds), which the canary's per-cohort guardrails group by; `explore`,
        what exploration drew the page from (its propensities follow from it); `teams`,
        an interleaved page's release per slot (0 stable, 1 canary)."""
        if self.events.sink is None:
            return
        self.events.emit_answered(Answered(
            int(time.time() * 1000), request_id, user_key(user_id) if user_id else "", variant,
            release or self.events.release, route, level, k, len(items),
            (time.perf_counter() - t0) * 1e3, cohort, items, teams,
            explore.fields() if explore is not None else None))

    def error(self, route: str, status: int, code: str, message: str,
              user_id: str | None = None, request_id: str | None = None,
              release: str | None = None) -> None:
        """An error event for a 4xx/5xx answer (the error rate's numerator)."""
        self.events.emit("error", {"request_id": request_id, "route": route, "status": status,
                                   "code": code, "message": message[:500],
                                   "user_key": user_key(user_id) if user_id else None,
                                   "dropped": 0, "release": release or self.events.release})
