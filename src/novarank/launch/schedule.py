"""The baseline's traffic shape: four phases on a diurnal curve, a pure function of time.

Simulated time t (seconds since the start of the 24 h collection) maps to a load level in
[0, 1]; wall time is t / speedup, and the request rate at a wall instant is
level(t) * peak_rps. Nothing here reads a clock, so the same schedule runs in real time or
compressed (24 h in 5 minutes at speedup 288), and tests can evaluate it directly.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

HOUR = 3_600.0


@dataclass(frozen=True)
class Phase:
    name: str
    start_h: float
    end_h: float


PHASES = (
    Phase("warm-up & cache initialisation", 0.0, 2.0),
    Phase("steady state", 2.0, 8.0),
    Phase("peak load", 8.0, 16.0),
    Phase("full daily cycle", 16.0, 24.0),
)


def diurnal(hour_of_day: float) -> float:
    """Relative activity over a day: lowest around 05:00, highest around 20:00, in [0.2, 1]."""
    return 0.6 + 0.4 * math.cos((hour_of_day - 20.0) / 24.0 * 2.0 * math.pi)


@dataclass(frozen=True)
class Schedule:
    duration_s: float = 24 * HOUR  # simulated
    speedup: float = 1.0
    peak_rps: float = 100.0  # wall-clock requests/s at level 1.0
    steady_level: float = 0.5
    start_hour_of_day: float = 10.0  # the guide starts collection at 10:00 UTC

    def __post_init__(self) -> None:
        if self.duration_s <= 0 or self.speedup <= 0 or self.peak_rps <= 0:
            raise ValueError("duration, speedup and peak_rps must be > 0")

    @property
    def wall_s(self) -> float:
        return self.duration_s / self.speedup

    def scale(self) -> float:
        """Phases are defined on 24 h; a shorter/longer collection stretches them."""
        return self.duration_s / (24 * HOUR)

    def phase_at(self, t: float) -> Phase:
        h = t / self.scale() / HOUR
        for p in PHASES:
            if p.start_h <= h < p.end_h:
                return p
        return PHASES[-1]

    def level(self, t: float) -> float:
        """Load level in [0, 1] at simulated second t."""
        h = t / self.scale() / HOUR
        s = self.steady_level
        if h < 2.0:  # warm-up: ramp from a trickle to steady
            return s * (0.2 + 0.8 * h / 2.0)
        if h < 8.0:
            return s
        if h < 16.0:  # peak: rise to full load and back, smooth at both ends
            return s + (1.0 - s) * math.sin(math.pi * (h - 8.0) / 8.0) ** 2
        hour_of_day = (self.start_hour_of_day + h) % 24.0
        return s * diurnal(hour_of_day) / diurnal((self.start_hour_of_day + 16.0) % 24.0)

    def service_env(self, feed_ttl_s: float = 300.0, snapshot_ttl_s: float = 1800.0,
                    trending_refresh_s: float = 5.0) -> dict[str, str]:
        """Settings for a service that lives on this schedule's clock: in a compressed run
        its TTLs and refresh periods shrink by the speedup (with floors a 2-core machine can
        honour), so a 5-minute feed TTL still lasts five simulated minutes and the cache
        numbers mean what they would in real time."""
        if self.speedup == 1.0:
            return {}
        return {"NOVARANK_FEED_TTL_S": f"{max(feed_ttl_s / self.speedup, 0.25):g}",
                "NOVARANK_SNAPSHOT_TTL_S": f"{max(snapshot_ttl_s / self.speedup, 1.0):g}",
                "NOVARANK_TRENDING_REFRESH_S": f"{max(trending_refresh_s / self.speedup, 0.2):g}"}

    def rate_at_wall(self, w: float) -> float:
        return self.level(w * self.speedup) * self.peak_rps

    def arrivals(self, max_requests: int | None = None) -> np.ndarray:
        """Intended send instants (wall seconds from the start): the rate integrated in steps
        of at most 50 ms, so every request's schedule is known before the first is sent."""
        out: list[float] = []
        w, step = 0.0, 0.05
        carry = 0.0
        while w < self.wall_s:
            dt = min(step, self.wall_s - w)
            expected = self.rate_at_wall(w + dt / 2) * dt + carry
            n = int(expected)
            carry = expected - n
            if n:
                out.extend(w + (np.arange(n) + 0.5) * dt / n)
            w += dt
            if max_requests is not None and len(out) >= max_requests:
                break
        arr = np.asarray(out, dtype=np.float64)
        return arr if max_requests is None else arr[:max_requests]


def parse_duration(text: str) -> float:
    """'24h', '90m', '300s' or plain seconds -> seconds."""
    units = {"h": HOUR, "m": 60.0, "s": 1.0}
    t = text.strip().lower()
    try:
        if t and t[-1] in units:
            return float(t[:-1]) * units[t[-1]]
        return float(t)
    except ValueError:
        raise ValueError(f"duration must look like 24h, 90m or 300s, got {text!r}") from None
