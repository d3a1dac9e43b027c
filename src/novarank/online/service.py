"""The service: opens the stores, composes the roles that answer requests, and owns the
background threads. The API, the CLI and the launch harness all serve through this.

Roles (each a plain class with its dependencies passed in; see docs/architecture.md):
`releases` (what is routed), `audience` (variant, profile), `live` (catalog changes),
`feeds` (the feed path), `discovery` (trending, similar, search, items), `engagement`
(engagement and forgetting), `invalidation` (cached feeds across replicas).
"""

from __future__ import annotations

import logging
import os
import socket
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, Literal

from novarank.config import ServiceSettings
from novarank.errors import ConfigError, InputError
from novarank.online.audience import Audience
from novarank.online.context import ServiceContext
from novarank.online.discovery import Discovery
from novarank.online.engagement import Ingest
from novarank.online.feeds import FeedPath
from novarank.online.follower import ReleaseFollower
from novarank.online.invalidation import Invalidation
from novarank.online.live import LiveCatalog
from novarank.online.metrics import ServiceMetrics
from novarank.online.releases import Routing, load_served
from novarank.online.requests import RequestLog
from novarank.online.tiered_cache import TieredCache
from novarank.online.toggles import ToggleWatcher, validate
from novarank.ranking.recommender import Recommender
from novarank.stores import open_cache, open_counters, open_state
from novarank.stores.cache import MemoryCache, RedisCache
from novarank.telemetry.emitter import Emitter
from novarank.telemetry.sinks import open_sink

log = logging.getLogger("novarank.service")


def memory_limit_bytes() -> float:
    """The cgroup v2 memory limit when one is set, else the machine's RAM."""
    try:
        raw = open("/sys/fs/cgroup/memory.max").read().strip()  # noqa: SIM115
        if raw != "max":
            return float(raw)
    except OSError:
        pass
    import psutil

    return float(psutil.virtual_memory().total)


def open_local(release: str | Path, *, at: float | Literal["release", "now"] = "now",
               **overrides: Any) -> RankingService:
    """A service in this process with nothing shared (state in memory, no L2, no
    telemetry): the Python API and `novarank recommend` rank through the same feed path as
    HTTP. `at` is the time feeds are ranked at: "now", "release" (the release's clock, so
    feeds are reproducible) or unix seconds."""
    settings = ServiceSettings(**{"state_url": "sqlite://", "cache_url": "memory://",
                                  "counters_url": "memory://", "events_url": "null://",
                                  **overrides, "release": Path(release)})
    if at == "now":
        return RankingService(settings)
    if at == "release":
        return RankingService(settings, clock="release")
    fixed = float(at)
    return RankingService(settings, clock=lambda: fixed)


class RankingService:
    """Loads and verifies a release, opens the stores, and serves every product call."""

    def __init__(self, settings: ServiceSettings,
                 clock: Callable[[], float] | Literal["release"] = time.time) -> None:
        """`clock` is the time feeds are ranked at: the wall clock, or "release" for the
        release's own clock (reproducible offline feeds)."""
        s = self.settings = settings
        configured = load_served(s.release, s)
        if clock == "release":
            as_of = float(configured.rec.model.as_of)
            clock = lambda: as_of  # noqa: E731
        metrics = self.metrics = ServiceMetrics()
        self.state = open_state(s.state_url)
        l2 = None if s.cache_url.startswith("memory") else open_cache(s.cache_url,
                                                                     prefix=s.key_prefix)
        self.cache = TieredCache(MemoryCache(s.l1_max_entries, s.l1_max_bytes), l2, metrics)
        self.events = Emitter(open_sink(s.events_url, f"{s.key_prefix}telemetry"),
                              release=configured.version,
                              on_drop=lambda n, reason: metrics.of(
                                  metrics.telemetry_dropped, reason).inc(n))
        self.toggles = ToggleWatcher(self.state)
        ctx = self.ctx = ServiceContext(s, self.state, self.cache, self.events, metrics,
                                        self.toggles, f"{socket.gethostname()}:{os.getpid()}",
                                        clock)
        self.requests = RequestLog(metrics, self.events)
        self.live = LiveCatalog(ctx, open_counters(s.counters_url, prefix=s.key_prefix))
        self.releases = ReleaseFollower(ctx, configured, self.live.prepare)
        self.audience = Audience(ctx, self.releases)
        self.invalidation = Invalidation(ctx, self.releases)
        self.feeds = FeedPath(ctx, self.releases, self.audience, self.invalidation,
                              self.requests)
        self.discovery = Discovery(ctx, self.releases, self.audience, self.live, self.requests)
        self.engagement = Ingest(ctx, self.releases, self.audience, self.live, self.feeds,
                             self.invalidation, self.requests)
        self._gauges()
        self._written_seen = 0
        self._stop = threading.Event()
        self.releases.follow(wait=True)  # a restarted replica serves what the rollout says
        self._sync()
        self._threads = [threading.Thread(target=self._refresh_loop, name="nr-refresh",
                                          daemon=True),
                         threading.Thread(target=self.feeds.refresh_ahead_loop,
                                          args=(self._stop,), name="nr-refresh-ahead",
                                          daemon=True)]
        if isinstance(l2, RedisCache):
            self._threads.append(threading.Thread(target=self.invalidation.listen,
                                                  args=(l2, self._stop), name="nr-invalidate",
                                                  daemon=True))
        for t in self._threads:
            t.start()
        log.info("release %s loaded and verified: %d items, %d users; state %s, L2 %s, "
                 "events %s", self.release, self.rec.catalog.n_items, self.rec.model.n_users,
                 self.state.name, l2.name if l2 is not None else "none", self.events.name)

    def _gauges(self) -> None:
        m = self.metrics
        m.telemetry_lag.set_function(self.events.lag_seconds)
        m.telemetry_sink_up.set_function(lambda: float(self.events.sink_up))
        m.of(m.entries, "influence").set_function(self.live.influence.size)
        m.of(m.entries, "forgotten_users").set_function(lambda: len(self.audience.forgotten))
        m.memory_limit.set(memory_limit_bytes())
        for variant, share in self.settings.split.items():
            m.split.labels(variant).set(share / 100.0)
        m.of(m.release_info, self.release).set(1)

    # ---- what is served ----------------------------------------
    @property
    def routing(self) -> Routing:
        return self.releases.routing

    @property
    def rec(self) -> Recommender:
        """The stable release's recommender (discovery, search and item calls use it)."""
        return self.releases.rec

    @property
    def release(self) -> str:
        return self.releases.release

    def release_for(self, user_id: str) -> str:
        """The release this user's feed is routed to (stable or canary)."""
        return self.releases.routing.for_user(user_id).version

    # ---- background sync ----------------------------------------
    def _sync(self) -> None:
        """Re-read toggles, the rollout, catalog upserts, forgotten users and (less often)
        trending."""
        self.toggles.refresh()
        try:
            self.releases.follow()
        except Exception:
            log.exception("could not follow the rollout document; routing unchanged")
        self.live.sync(self.routing.loaded())
        self.audience.refresh_forgotten()
        self.metrics.catalog_items.set(self.rec.catalog.n_items)
        self.metrics.kill_switch.set(1.0 if self.toggles.current().kill_switch else 0.0)
        written = self.events.written
        self.metrics.telemetry_written.inc(written - self._written_seen)
        self._written_seen = written
        self.cache.observe()

    def _refresh_loop(self) -> None:
        while not self._stop.wait(self.settings.refresh_s):
            try:
                self._sync()
            except Exception:
                log.exception("background sync failed; serving the previous view")
                self.metrics.of(self.metrics.fallbacks, "sync_error").inc()

    def close(self) -> None:
        self._stop.set()
        self.feeds.wake()
        for t in self._threads:
            t.join(timeout=2)
        self.events.close()
        self.state.close()

    # ---- admin ----------------------------------------
    def set_toggles(self, kill_switch: bool | None, signals_off: list[str] | None,
                    variants_off: list[str] | None) -> dict[str, Any]:
        try:
            validate(kill_switch, signals_off, variants_off, set(self.rec.ranker.variants))
        except ConfigError as exc:
            field = str(exc).split(":", 1)[0]
            raise InputError(field, str(exc).split(": ", 1)[1]) from None
        return self.toggles.set(kill_switch=kill_switch, signals_off=signals_off,
                                variants_off=variants_off).to_dict()

    def ready(self) -> dict[str, Any]:
        """Ready = can answer feeds: a verified release and a reachable state store. The
        shared cache is reported but does not count: with it down every replica still
        serves (from L1, ranking locally), and failing readiness would take them all out
        of the load balancer at once."""
        threads = {t.name: t.is_alive() for t in self._threads}
        threads["nr-telemetry"] = self.events.alive
        checks = {"release_verified": True, "state": self.state.ping(),
                  "cache": self.cache.l2.ping() if self.cache.l2 is not None else True,
                  "telemetry": self.events.sink_up,  # refused batches wait in the buffer
                  # supervised loops never exit on an error: a dead one is a bug, and a
                  # replica whose sync is dead would miss the kill switch
                  "threads": all(threads.values())}
        return {"ready": checks["release_verified"] and checks["state"] and checks["threads"],
                "checks": checks, "threads": threads,
                "degraded": not (checks["cache"] and checks["telemetry"]),
                "release": self.release}
