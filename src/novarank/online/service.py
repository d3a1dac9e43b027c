"""The request path as one object: the API, the CLI and the launch harness all call this."""

from __future__ import annotations

import base64
import contextlib
import logging
import os
import queue
import random
import socket
import threading
import time
from collections import defaultdict
from typing import Any

import numpy as np
import orjson

from novarank.config import SIGNALS, ServiceSettings
from novarank.errors import (
    ConfigError,
    InputError,
    NotFoundError,
    NovarankError,
)
from novarank.online.assignment import Splitter
from novarank.online.discovery import DiscoveryCalls
from novarank.online.engagement import EngagementCalls
from novarank.online.follower import ReleaseFollower
from novarank.online.health import StoreHealth
from novarank.online.ids import new_id
from novarank.online.influence import InfluenceCap
from novarank.online.metrics import ServiceMetrics
from novarank.online.releases import (
    InjectedFault,
    ReleaseFailure,
    Routing,
    Served,
    load_served,
)
from novarank.online.search import SearchIndex
from novarank.online.tiered_cache import TieredCache
from novarank.online.toggles import Toggles, ToggleWatcher, validate
from novarank.online.window import SOURCES, Window
from novarank.ranking.recommender import Recommender, UserProfile
from novarank.stores import open_cache, open_counters, open_state
from novarank.stores.cache import MemoryCache, RedisCache
from novarank.telemetry.emitter import Emitter
from novarank.telemetry.schemas import user_key
from novarank.telemetry.sinks import open_sink

log = logging.getLogger("novarank.service")
DAY = 86_400
COLD_USER = "\x00cold"  # the shared window of users with no history (never a real id)
CATALOG_LOOKBACK = 1_000  # re-read recent catalog changes: concurrent writers may commit late


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


def encode_cursor(snapshot: str, offset: int) -> str:
    return base64.urlsafe_b64encode(f"{snapshot}:{offset}".encode()).decode().rstrip("=")


def decode_cursor(cursor: str) -> tuple[str, int]:
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode()
        snapshot, offset = raw.split(":")
        return snapshot, int(offset)
    except (ValueError, UnicodeDecodeError):
        raise NotFoundError("cursor", "not a cursor returned by this API: request the first "
                            "page again") from None


class RankingService(ReleaseFollower, DiscoveryCalls, EngagementCalls):
    """Loads and verifies a release, opens the stores, and serves every product call."""

    def __init__(self, settings: ServiceSettings) -> None:
        s = self.settings = settings
        self._configured = load_served(s.release, s)
        self.routing = Routing(self._configured)
        self.splitter = Splitter(s.split, s.experiment_salt)
        self.metrics = ServiceMetrics()
        self.state = open_state(s.state_url)
        self.replica = f"{socket.gethostname()}:{os.getpid()}"
        self._loading: set[str] = set()
        self._pool: dict[str, Served] = {}  # loaded in the background, not routed yet
        self._load_failed: dict[str, float] = {}
        l2 = None if s.cache_url.startswith("memory") else open_cache(s.cache_url,
                                                                     prefix=s.key_prefix)
        self.cache = TieredCache(MemoryCache(s.l1_max_entries, s.l1_max_bytes), l2,
                                 self.metrics)
        self.counters = open_counters(s.counters_url, prefix=s.key_prefix)
        self.influence = InfluenceCap()  # one user's bound on live trending
        self.counters_health = StoreHealth("trending counters", self.metrics,
                                           degraded="trending without live engagement")
        self.events = Emitter(open_sink(s.events_url, f"{s.key_prefix}telemetry"),
                              release=self.release,
                              on_drop=lambda n, reason: self.metrics.of(
                                  self.metrics.telemetry_dropped, reason).inc(n))
        self.metrics.telemetry_lag.set_function(self.events.lag_seconds)
        self.metrics.telemetry_sink_up.set_function(lambda: float(self.events.sink_up))
        self.metrics.of(self.metrics.entries, "influence").set_function(
            self.influence.size)
        self.metrics.memory_limit.set(memory_limit_bytes())
        for variant, share in s.split.items():
            self.metrics.split.labels(variant).set(share / 100.0)
        self._written_seen = 0
        self.toggles = ToggleWatcher(self.state)
        self._forgotten: set[str] = set()
        self._catalog_lock = threading.Lock()
        self._search: tuple[int, SearchIndex] | None = None
        self._trending_at = 0.0
        self._stop = threading.Event()
        self._follow_rollout(wait=True)  # a restarted replica serves what the rollout says
        self.metrics.of(self.metrics.release_info, self.release).set(1)
        self._sync()
        self._refresh_q: queue.Queue[str] = queue.Queue(maxsize=s.refresh_ahead_queue)
        self._refresh_pending: set[str] = set()  # bounded by the queue it mirrors
        for table, size in (("forgotten_users", lambda: len(self._forgotten)),
                            ("refresh_pending", lambda: len(self._refresh_pending))):
            self.metrics.of(self.metrics.entries, table).set_function(size)
        self._threads = [threading.Thread(target=self._refresh_loop, name="nr-refresh",
                                          daemon=True),
                         threading.Thread(target=self._refresh_ahead_loop,
                                          name="nr-refresh-ahead", daemon=True)]
        if isinstance(l2, RedisCache):
            self._threads.append(threading.Thread(target=self._listen_invalidations,
                                                  args=(l2,), name="nr-invalidate",
                                                  daemon=True))
        for t in self._threads:
            t.start()
        log.info("release %s loaded and verified: %d items, %d users; state %s, L2 %s, "
                 "events %s", self.release, self.rec.catalog.n_items, self.rec.model.n_users,
                 self.state.name, l2.name if l2 is not None else "none", self.events.name)

    # ---- background sync ----------------------------------------
    def _sync(self) -> None:
        """Re-read toggles, the rollout, catalog upserts, forgotten users and (less often)
        trending."""
        self.toggles.refresh()
        try:
            self._follow_rollout()
        except Exception:
            log.exception("could not follow the rollout document; routing unchanged")
        for served in self.routing.loaded():
            self._catch_up(served)
        self._forgotten = {k.split(":", 1)[1] for k in self.state.get_docs("forgotten:")}
        if time.monotonic() - self._trending_at >= self.settings.trending_refresh_s:
            self.refresh_trending()
        self.metrics.catalog_items.set(self.rec.catalog.n_items)
        self.metrics.kill_switch.set(1.0 if self.toggles.current().kill_switch else 0.0)
        written = self.events.written
        self.metrics.telemetry_written.inc(written - self._written_seen)
        self._written_seen = written
        self.cache.observe()

    def _catch_up(self, served: Served) -> None:
        """Apply the catalog upserts this release's catalog has not seen yet."""
        cat = served.rec.catalog
        changed = [it for it in self.state.items_since(max(0, cat.version - CATALOG_LOOKBACK))
                   if it.seq > cat.version or cat.index.get(it.item_id) is None]
        if changed:
            with self._catalog_lock:
                served.rec.catalog = served.rec.catalog.with_upserts(
                    changed, self._quality_prior(served.rec))

    def live_counts(self, now: int, half_life_s: float, horizon_s: int
                    ) -> dict[str, float] | None:
        """Live engagement per item, decayed; None while the counters are down (trending
        then keeps what was last read)."""
        return self.counters_health.call(
            "read", lambda: self.counters.decayed(now, half_life_s, horizon_s), None)

    def count_engagement(self, weights: dict[str, float], now: int) -> None:
        """Add to the live counters; while they are down the addition is skipped and
        counted (they are derived: the state store holds every accepted event)."""
        self.counters_health.call("add", lambda: self.counters.add(weights, now), None)

    def _trend(self, served: Served, now: int) -> None:
        """The release's trending decayed to now, plus the live counters (kept as it was
        while the counters cannot be read)."""
        m, r = served.rec.model, served.rec.ranker
        hl = r.trending_half_life_days * DAY
        live = self.live_counts(now, hl, int(4 * hl))
        if live is None:
            return
        factor = float(np.exp2(-max(0, now - m.as_of) / hl))
        with self._catalog_lock:
            served.rec.catalog = served.rec.catalog.with_trending(m.trending, factor, live)

    def refresh_trending(self) -> None:
        now = int(time.time())
        for served in self.routing.loaded():
            self._trend(served, now)
        self._trending_at = time.monotonic()

    def _refresh_loop(self) -> None:
        while not self._stop.wait(self.settings.refresh_s):
            try:
                self._sync()
            except Exception:
                log.exception("background sync failed; serving the previous view")
                self.metrics.of(self.metrics.fallbacks, "sync_error").inc()

    def _listen_invalidations(self, l2: RedisCache) -> None:
        """Drop other replicas' invalidated feeds from L1. Supervised: after a lost
        connection it resubscribes with backoff, and then empties L1, since invalidations
        sent while it was away are lost and an L1 entry could outlive its user's like."""
        backoff, outage, pubsub = 0.5, False, None
        while not self._stop.is_set():
            try:
                pubsub = l2.subscribe(self._channel)
                if outage:
                    self.cache.l1.clear()
                    log.info("invalidation listener reconnected; L1 emptied (invalidations "
                             "sent meanwhile are lost)")
                outage, backoff = False, 0.5
                while not self._stop.is_set():
                    msg = pubsub.get_message(timeout=0.5)
                    if msg and msg.get("type") == "message":
                        self.cache.l1.delete(self._feed_keys(msg["data"].decode()))
                pubsub.close()
            except Exception as exc:  # the thread must outlive any Redis error
                if pubsub is not None:
                    with contextlib.suppress(Exception):
                        pubsub.close()
                if not outage:
                    log.warning("invalidation listener lost Redis (%s); retrying with backoff",
                                type(exc).__name__)
                outage = True
                self.metrics.of(self.metrics.thread_restarts, "nr-invalidate").inc()
                self._stop.wait(backoff)
                backoff = min(backoff * 2, 1.0)  # back within a second of Redis

    @property
    def _channel(self) -> str:
        return f"{self.settings.key_prefix}invalidate"

    def _quality_prior(self, rec: Recommender | None = None) -> float:
        m = (rec or self.rec).model
        return float(np.mean(m.quality)) if m.n_items else 0.5

    def close(self) -> None:
        self._stop.set()
        with contextlib.suppress(queue.Full):
            self._refresh_q.put_nowait("")  # wake the refresh-ahead worker
        for t in self._threads:
            t.join(timeout=2)
        self.events.close()
        self.state.close()

    # ---- assignment ----------------------------------------
    def _variant(self, user_id: str, override: str | None, toggles: Toggles) -> str:
        """The variant served: the override (validated) or the assignment, unless that
        variant is switched off."""
        if override is not None:
            if override not in self.rec.ranker.variants:
                raise InputError("X-Variant-Override", f"unknown variant '{override}' "
                                 f"(known: {sorted(self.rec.ranker.variants)})")
            variant = override
        else:
            variant = self.splitter.assign(user_id)[0]
        return "control" if variant in toggles.variants_off else variant

    def assignment(self, user_id: str, override: str | None = None) -> dict[str, Any]:
        assigned, bucket = self.splitter.assign(user_id)
        toggles = self.toggles.current()
        variant = override if override is not None else assigned
        served = self._variant(user_id, override, toggles)
        return {"user_id": user_id, "bucket": bucket, "assigned_variant": assigned,
                "variant": served, "override": override is not None,
                "variant_off": variant in toggles.variants_off,
                "release": self.routing.for_user(user_id).version,
                "salt": self.splitter.salt}

    # ---- profiles ----------------------------------------
    def profile(self, user_id: str, served: Served | None = None) -> UserProfile:
        rec = (served or self.routing.stable).rec
        live = self.state.history(user_id, rec.ranker.max_history * 2)
        # a forgotten user's old rows are still in the release: never use them again
        return rec.profile(user_id, live, use_release=user_id not in self._forgotten)

    def _weights(self, variant: str, toggles: Toggles, served: Served) -> np.ndarray:
        w = served.rec.weights(variant).copy()
        for name in toggles.signals_off:
            w[SIGNALS.index(name)] = 0.0
        return w

    def _feed_key(self, variant: str, user_id: str, toggles: Toggles, served: Served) -> str:
        tog = ",".join(sorted(toggles.signals_off))
        return f"feed:{served.version}:{served.digest}:{tog}:{variant}:{user_id}"

    def _feed_keys(self, user_id: str) -> list[str]:
        toggles = self.toggles.current()
        return [self._feed_key(v, user_id, toggles, s) for s in self.routing.loaded()
                for v in self.rec.ranker.variants]

    def invalidate(self, user_id: str) -> None:
        """Drop the user's cached feeds here, in L2, and (via pub/sub) in every replica's L1.
        With Redis down only this replica's L1 is cleared; the others empty theirs when
        their listener reconnects."""
        self.cache.delete(self._feed_keys(user_id))
        l2 = self.cache.l2
        if isinstance(l2, RedisCache):
            self.cache.health.call("publish", lambda: l2.publish(self._channel, user_id), None)

    # ---- feed ----------------------------------------
    def _check_k(self, k: int, limit: int | None = None) -> None:
        limit = limit or self.settings.feed_window
        if not 1 <= k <= limit:
            raise InputError("k", f"must be between 1 and {limit}, got {k}")

    def release_for(self, user_id: str) -> str:
        """The release this user's feed is routed to (stable or canary)."""
        return self.routing.for_user(user_id).version

    def feed(self, user_id: str, k: int = 10, cursor: str | None = None,
             override: str | None = None, *, l1_only: bool = False,
             raw_items: bool = False, refresh: bool = False) -> dict[str, Any] | None:
        """One page of the user's feed (see `_feed`). The routing is read once, before any
        ranking: an unexpected error is a ReleaseFailure of the release the user was routed
        to, so a canary that raises at request time counts against the canary."""
        routing = self.routing
        try:
            body = self._feed(routing, user_id, k, cursor, override, l1_only=l1_only,
                              raw_items=raw_items, refresh=refresh)
        except ReleaseFailure as exc:
            self.metrics.of(self.metrics.release_requests, exc.release, "error").inc()
            raise
        except NovarankError:
            raise
        except Exception as exc:
            release = routing.for_user(user_id).version
            self.metrics.of(self.metrics.release_requests, release, "error").inc()
            log.exception("feed failed in release %s", release)
            raise ReleaseFailure(release, f"internal error ({type(exc).__name__}) in "
                                 f"release {release}") from exc
        if body is not None:
            self.metrics.of(self.metrics.release_requests, body["release"], "ok").inc()
        return body

    def _feed(self, routing: Routing, user_id: str, k: int, cursor: str | None,
              override: str | None, *, l1_only: bool, raw_items: bool,
              refresh: bool) -> dict[str, Any] | None:
        """One page of the user's feed. The first page ranks a window of `feed_window`
        items and caches it as a snapshot; cursors page through that snapshot, so pages
        never repeat an item. With `l1_only` nothing but process memory is touched and
        None means "not in L1": the async route's fast path, before it offloads. With
        `raw_items`, "items" is pre-serialised JSON (orjson.Fragment) for the HTTP layer.
        `refresh` re-ranks without reading the cache (HTTP `Cache-Control: no-cache`)."""
        self._check_k(k)
        t0 = time.perf_counter()
        if cursor:
            snapshot, offset = decode_cursor(cursor)
            raw, level = self._lookup(f"snap:{snapshot}", self.settings.snapshot_ttl_s, l1_only)
            if raw is None:
                if l1_only:
                    return None
                raise NotFoundError("cursor", "expired or unknown: request the first page again")
            window = Window.decode(raw)
            if window.meta["user_id"] not in (user_id, COLD_USER):
                raise NotFoundError("cursor", "belongs to another user")
            made_by = window.meta.get("release", routing.stable.version)
            served = routing.by_version(made_by)
            if served is None:
                raise NotFoundError("cursor", f"made by release {made_by}, which is no longer "
                                 "served: request the first page again")
            if not self._canary_fault(served, routing, l1_only):
                return None
        else:
            offset = 0
            served = routing.for_user(user_id)
            if not self._canary_fault(served, routing, l1_only):
                return None
            toggles = self.toggles.current()
            variant = self._variant(user_id, override, toggles)
            if toggles.kill_switch:
                return None if l1_only else self._fallback_feed(user_id, k, variant, t0, served)
            key = self._feed_key(variant, user_id, toggles, served)
            pointer, level = (None, "miss") if refresh else self._lookup(
                key, self.settings.feed_ttl_s, l1_only)
            raw = None
            if pointer is not None:
                raw, _ = self._lookup(f"snap:{pointer.decode()}", self.settings.snapshot_ttl_s,
                                      l1_only)
            if raw is None:
                if l1_only:
                    return None
                window, level = self._window_for(user_id, variant, toggles, key, served,
                                                 refresh)
            else:
                window = Window.decode(raw)
            self.metrics.of(self.metrics.assignments, variant).inc()
        if l1_only:
            self.metrics.of(self.metrics.cache, "l1", "hit").inc()
        request_id = new_id()
        meta = window.meta
        page = self._page(window, offset, k, served)
        end = min(offset + k, len(window.items))
        ids = served.rec.catalog.item_ids[window.items[offset:end]].tolist()
        more = offset + k < len(window.items)
        degraded = level == "miss" and self.cache.degraded
        if degraded:  # ranked here because the shared cache could not be asked
            self.metrics.of(self.metrics.fallbacks, "l2_down").inc()
        body = {"request_id": request_id, "user_id": user_id, "variant": meta["variant"],
                "release": served.version, "cold": meta["cold"], "fallback": False,
                "cache": level, "degraded": degraded,
                "items": orjson.Fragment(page) if raw_items
                else orjson.loads(page),
                "next_cursor": encode_cursor(meta["snapshot"], offset + k) if more else None}
        self._observe("feed", level, t0, k, len(ids))
        self._emit_request("feed", request_id, user_id, meta["variant"], level, k, ids, t0,
                           served.version)
        return body

    def _canary_fault(self, served: Served, routing: Routing, l1_only: bool) -> bool:
        """Apply a drill's fault to a canary request. False: not on the event loop (a delay
        would stall every request), so the caller hands the request to the thread pool."""
        fault = routing.fault
        if fault is None or served is not routing.canary:
            return True
        if l1_only:
            return False
        if random.random() < fault.rate:
            if fault.kind == "errors":
                raise InjectedFault(served.version)
            time.sleep(fault.ms / 1000)
        return True

    def _page(self, window: Window, offset: int, k: int, served: Served) -> bytes:
        """The page's items as JSON, rendered once per snapshot, offset, k and catalog
        version (an upsert re-renders: titles may have changed) and kept in L1."""
        key = f"page:{window.meta['snapshot']}:{offset}:{k}:{served.rec.catalog.version}"
        page = self.cache.l1.get_many([key])[0]
        if page is None:
            page = orjson.dumps(self._render(window, offset, k, served))
            self.cache.l1.set_many({key: page}, self.settings.feed_ttl_s)
        return page

    def _lookup(self, key: str, ttl_s: float, l1_only: bool) -> tuple[bytes | None, str]:
        if l1_only:  # uncounted: a miss here is retried (and counted) on the full path
            hit = self.cache.l1.get_many([key])[0]
            return hit, "l1" if hit is not None else "miss"
        return self.cache.get(key, ttl_s)

    def _store(self, key: str, window: Window) -> None:
        """Snapshot under its own id (what cursors point at); the feed key holds its id."""
        snap = window.meta["snapshot"]
        self.cache.set({f"snap:{snap}": window.encode()}, self.settings.snapshot_ttl_s)
        self.cache.set({key: snap.encode()}, self.settings.feed_ttl_s)

    def _window_for(self, user_id: str, variant: str, toggles: Toggles, key: str,
                    served: Served, refresh: bool = False) -> tuple[Window, str]:
        """The miss path. A user with no history at all gets the variant's shared cold
        window (ranked once, then a cache hit for every newcomer); anyone else is ranked."""
        p = self.profile(user_id, served)
        if p.cold and not len(p.seen) and not refresh:
            shared = self._feed_key(variant, COLD_USER, toggles, served)
            pointer, level = self.cache.get(shared, self.settings.feed_ttl_s)
            raw = None
            if pointer is not None:
                raw, _ = self.cache.get(f"snap:{pointer.decode()}", self.settings.snapshot_ttl_s)
            if raw is not None:
                self.cache.set({key: pointer}, self.settings.feed_ttl_s)
                return Window.decode(raw), level
            window = self._rank_window(COLD_USER, variant, toggles, served, p)
            self._store(shared, window)
            self.cache.set({key: window.meta["snapshot"].encode()}, self.settings.feed_ttl_s)
            return window, "miss"
        window = self._rank_window(user_id, variant, toggles, served, p)
        self._store(key, window)
        return window, "miss"

    def _refresh_ahead_loop(self) -> None:
        """Re-rank users right after their engagement invalidated them, off the request
        path, so their next feed is a hit that already reflects what they did."""
        while not self._stop.is_set():
            try:
                user_id = self._refresh_q.get(timeout=0.5)
            except queue.Empty:
                continue
            if not user_id:
                continue
            try:
                toggles = self.toggles.current()
                if toggles.kill_switch:
                    continue
                variant = self._variant(user_id, None, toggles)
                served = self.routing.for_user(user_id)
                key = self._feed_key(variant, user_id, toggles, served)
                if self.cache.l1.get_many([key])[0] is None:  # not already re-ranked
                    self._window_for(user_id, variant, toggles, key, served)
                    self.metrics.refresh_ahead.inc()
            except Exception:
                log.exception("refresh-ahead failed for a user")
            finally:
                self._refresh_pending.discard(user_id)

    def _rank_window(self, user_id: str, variant: str, toggles: Toggles, served: Served,
                     p: UserProfile | None = None) -> Window:
        p = p if p is not None else self.profile(user_id, served)
        r = served.rec.rank(p, self.settings.feed_window,
                            self._weights(variant, toggles, served), int(time.time()))
        n_bf = len(r.backfill)
        return Window(
            meta={"snapshot": new_id()[:16], "user_id": user_id, "variant": variant,
                  "cold": p.cold, "release": served.version},
            items=np.concatenate([r.items, r.backfill]).astype(np.int32),
            scores=np.concatenate([r.scores, np.zeros(n_bf, np.float32)]),
            reasons=np.vstack([r.contributions.reshape(-1, len(SIGNALS)),
                               np.zeros((n_bf, len(SIGNALS)), np.float32)]),
            sources=np.array([0] * len(r.items) + [1] * n_bf, np.uint8))

    def _render(self, w: Window, offset: int, k: int, served: Served) -> list[dict[str, Any]]:
        """The page's items from the catalog; rounding is vectorised (this is the hit path)."""
        cat = served.rec.catalog
        end = min(offset + k, len(w.items))
        idx = w.items[offset:end]
        scores = np.round(w.scores[offset:end].astype(np.float64), 5).tolist()
        reasons = np.round(w.reasons[offset:end].astype(np.float64), 5).tolist()
        trend = np.round(np.log1p(cat.trending[idx].astype(np.float64)), 5).tolist()
        out = []
        for n, (i, src) in enumerate(zip(idx.tolist(), w.sources[offset:end].tolist(),
                                         strict=True)):
            source = SOURCES[src]
            out.append({"item_id": cat.item_ids[i], "title": cat.titles[i], "score": scores[n],
                        "source": source,
                        "reasons": dict(zip(SIGNALS, reasons[n], strict=True))
                        if source == "ranked" else {"trending": trend[n]}})
        return out

    def _fallback_feed(self, user_id: str, k: int, variant: str, t0: float,
                       served: Served) -> dict[str, Any]:
        request_id = new_id()
        p = self.profile(user_id, served)
        cat = served.rec.catalog
        items = [{"item_id": str(cat.item_ids[i]), "title": str(cat.titles[i]), "score": 0.0,
                  "source": "fallback",
                  "reasons": {"trending": round(float(np.log1p(cat.trending[i])), 5)}}
                 for i in served.rec.fallback(p, k)]
        self.metrics.of(self.metrics.fallbacks, "kill_switch").inc()
        self._observe("feed", "fallback", t0, k, len(items))
        self._emit_request("feed", request_id, user_id, variant, "fallback", k,
                           [it["item_id"] for it in items], t0, served.version)
        return {"request_id": request_id, "user_id": user_id, "variant": variant,
                "release": served.version, "cold": p.cold, "fallback": True, "cache": "fallback",
                "degraded": False, "items": items, "next_cursor": None}

    def _observe(self, route: str, level: str, t0: float, k: int, n: int) -> None:
        elapsed = time.perf_counter() - t0
        self.metrics.of(self.metrics.request_latency, route, level).observe(elapsed)
        self.metrics.fill.observe(n / k if k else 1.0)

    def _emit_request(self, route: str, request_id: str, user_id: str, variant: str,
                      level: str, k: int, items: list[str], t0: float,
                      release: str | None = None) -> None:
        """The request and its ranking: what impressions and clicks join back to."""
        if self.events.sink is None:
            return
        ukey = user_key(user_id) if user_id else ""
        release = release or self.release
        self.events.emit_all((
            ("request", {"request_id": request_id, "user_key": ukey, "variant": variant,
                         "route": route, "status": 200, "cache": level, "k": k,
                         "returned": len(items), "latency_ms": (time.perf_counter() - t0) * 1e3,
                         "fallback": level == "fallback", "release": release}),
            ("ranking", {"request_id": request_id, "user_key": ukey, "variant": variant,
                         "items": items, "release": release})))

    def record_error(self, route: str, status: int, code: str, message: str,
                     user_id: str | None = None, request_id: str | None = None,
                     release: str | None = None) -> None:
        """An error event for a 4xx/5xx answer (the error rate's numerator)."""
        self.events.emit("error", {"request_id": request_id, "route": route, "status": status,
                                   "code": code, "message": message[:500],
                                   "user_key": user_key(user_id) if user_id else None,
                                   "dropped": 0, "release": release or self.release})

    # ---- cache warm plan ----------------------------------------
    def warm(self, max_users: int | None = None) -> dict[str, Any]:
        """Precompute feed windows for the release's most active users, each under the
        variant they are assigned, into L1 and the shared L2. Returns the manifest."""
        t0 = time.perf_counter()
        m = self.rec.model
        sizes = np.diff(m.hist_indptr)
        order = np.argsort(-sizes, kind="stable")
        if max_users is not None:
            order = order[:max_users]
        toggles = self.toggles.current()
        objects = size = 0
        variants: dict[str, int] = defaultdict(int)
        for u in order.tolist():
            user_id = str(m.user_ids[u])
            variant = self.assignment(user_id)["variant"]
            served = self.routing.for_user(user_id)
            window = self._rank_window(user_id, variant, toggles, served)
            self._store(self._feed_key(variant, user_id, toggles, served), window)
            objects += 2
            size += len(window.encode()) + 16
            variants[variant] += 1
        logging.getLogger("novarank.cache").info(
            "warm plan: %d users, %d objects, %.1f MB in %.2f s", len(order), objects,
            size / 1e6, time.perf_counter() - t0)
        return {"release": self.release, "users": len(order), "objects": objects,
                "bytes": size, "seconds": round(time.perf_counter() - t0, 3),
                "by_variant": dict(variants),
                "l2": self.cache.l2.name if self.cache.l2 is not None else None}

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
