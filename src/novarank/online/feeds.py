"""The feed path, the one way to a feed for HTTP, the CLI and the benchmarks: routing,
cursor, cache (L1, L2, the shared cold window), ranking on a miss, rendering, telemetry."""

from __future__ import annotations

import contextlib
import logging
import queue
import random
import threading
import time
from dataclasses import dataclass
from typing import Any

import numpy as np
import orjson

from novarank.errors import NotFoundError, NovarankError
from novarank.ids import new_id
from novarank.online.audience import Audience
from novarank.online.context import ServiceContext
from novarank.online.follower import ReleaseFollower
from novarank.online.invalidation import Invalidation, feed_key
from novarank.online.prepared import HEAD, PreparedFeeds
from novarank.online.releases import InjectedFault, ReleaseFailure, Routing, Served
from novarank.online.requests import Explored, RequestLog, check_k
from novarank.online.results import FeedPage, WarmManifest
from novarank.online.toggles import Toggles
from novarank.online.window import (
    RenderedPage,
    Window,
    cohort,
    decode_cursor,
    interleave,
    rank_window,
)
from novarank.ranking.explore import Exploration
from novarank.ranking.recommender import UserProfile

log = logging.getLogger("novarank.service")
COLD_USER = "\x00cold"  # the shared window of users with no history (never a real id)


@dataclass(frozen=True, slots=True)
class Drawn:
    """An exploration draw made on the L1 probe, carried to the full path that stores it."""

    pick: np.ndarray


class FeedPath:
    def __init__(self, ctx: ServiceContext, releases: ReleaseFollower, audience: Audience,
                 invalidation: Invalidation, requests: RequestLog) -> None:
        self.ctx, self.releases, self.audience = ctx, releases, audience
        self.invalidation, self.requests = invalidation, requests
        self._refresh_q: queue.Queue[str] = queue.Queue(
            maxsize=ctx.settings.refresh_ahead_queue)
        self._refresh_pending: set[str] = set()  # bounded by the queue it mirrors
        s = ctx.settings
        self.exploration = Exploration(s.exploration_epsilon, s.exploration_window)
        self._rng = np.random.default_rng()
        self._rng_lock = threading.Lock()  # a Generator is not safe to share across threads
        self.prepared = PreparedFeeds(ctx.cache.l1, s.feed_prepared_bytes)
        m = ctx.metrics
        m.of(m.entries, "prepared_feeds").set_function(lambda: len(self.prepared))
        # what a repeat adds to, bound once: (an L1 hit, its latency, its fill), and by
        # (variant, release): (the assignment, the release's answer)
        self._hit = (m.of(m.cache, "l1", "hit"), m.of(m.request_latency, "feed", "l1"),
                     m.of(m.fill))
        self._hit_by: dict[tuple[str, str], tuple[Any, Any]] = {}
        ctx.metrics.of(ctx.metrics.entries, "refresh_pending").set_function(
            lambda: len(self._refresh_pending))

    def feed(self, user_id: str, k: int = 10, cursor: str | None = None,
             override: str | None = None, *, refresh: bool = False,
             drawn: Drawn | None = None) -> FeedPage:
        """One page of the user's feed (see `_feed`); `drawn`: the exploration draw the L1
        probe made for this request (it is made once)."""
        page = self._guarded(user_id, k, cursor, override, l1_only=False, refresh=refresh,
                             drawn=drawn)
        assert isinstance(page, FeedPage)  # only the L1 probe answers None or a draw
        return page

    def from_l1(self, user_id: str, k: int = 10, cursor: str | None = None,
                override: str | None = None, *, count_failures: bool = True
                ) -> FeedPage | Drawn | None:
        """The page if process memory alone can answer it, else None (touches no store):
        the async route's fast path, on the event loop, before it offloads. A `Drawn`: a
        first page whose exploration draw came up, to be stored on the full path with that
        draw (`feed(..., drawn=)`), which is no miss. A caller that hands every failure on
        to the full path, which fails again and counts it there, passes
        `count_failures=False` (api/fastpath.py), so a failure is counted once."""
        return self._guarded(user_id, k, cursor, override, l1_only=True, refresh=False,
                             count_failures=count_failures)

    def repeat(self, user_id: str, k: int) -> bytes | None:
        """The body of the user's first page of `k` items when its last answer prepared it
        and that still stands (online/prepared.py), recorded as `_feed` records an L1 hit;
        else None. On the event loop: it touches nothing but process memory."""
        t0 = time.perf_counter()
        found = self.prepared.get(user_id, k, self.releases.routing, self.ctx.toggles.current())
        if found is None:
            return None
        *_, variant, release, group, ids, teams, tail = found
        by = self._hit_by.get((variant, release))
        if by is None:
            m = self.ctx.metrics
            by = self._hit_by[variant, release] = (m.of(m.assignments, variant),
                                                   m.of(m.release_requests, release, "ok"))
        hit, latency, fill = self._hit
        request_id = new_id()
        by[0].inc()
        hit.inc()
        latency.observe(time.perf_counter() - t0)  # as RequestLog.observe
        fill.observe(len(ids) / k)
        self.requests.emit("feed", request_id, user_id, variant, "l1", k, ids, t0, release,
                           group, None, teams)
        by[1].inc()
        return b"".join((HEAD, request_id.encode(), tail))

    def _guarded(self, user_id: str, k: int, cursor: str | None, override: str | None, *,
                 l1_only: bool, refresh: bool, count_failures: bool = True,
                 drawn: Drawn | None = None) -> FeedPage | Drawn | None:
        """The routing is read once, before any ranking: an unexpected error is a
        ReleaseFailure of the release the user was routed to, so a canary that raises at
        request time counts against the canary."""
        routing, metrics = self.releases.routing, self.ctx.metrics
        try:
            page = self._feed(routing, user_id, k, cursor, override, l1_only=l1_only,
                              refresh=refresh, drawn=drawn)
        except ReleaseFailure as exc:
            if count_failures:
                metrics.of(metrics.release_requests, exc.release, "error").inc()
            raise
        except NovarankError:
            raise
        except Exception as exc:
            release = routing.for_user(user_id).version
            if count_failures:
                metrics.of(metrics.release_requests, release, "error").inc()
                log.exception("feed failed in release %s", release)
            raise ReleaseFailure(release, f"internal error ({type(exc).__name__}) in "
                                 f"release {release}") from exc
        if isinstance(page, FeedPage):
            metrics.of(metrics.release_requests, page.release, "ok").inc()
        return page

    def _feed(self, routing: Routing, user_id: str, k: int, cursor: str | None,
              override: str | None, *, l1_only: bool, refresh: bool,
              drawn: Drawn | None = None) -> FeedPage | Drawn | None:
        """One page of the user's feed. The first page ranks a window of `feed_window`
        items and caches it as a snapshot; cursors page through that snapshot, so pages
        never repeat an item. With `l1_only` nothing but process memory is touched and
        None means "not in L1": the async route's fast path, before it offloads.
        `refresh` re-ranks without reading the cache (HTTP `Cache-Control: no-cache`)."""
        s, metrics = self.ctx.settings, self.ctx.metrics
        check_k(k, s.feed_window)
        t0 = time.perf_counter()
        explore: Explored | None = None
        entry = None  # a first page's L1 entry of its feed key, read on the event loop
        if cursor:
            snapshot, offset = decode_cursor(cursor)
            found = self._page(snapshot, offset, k, routing, l1_only)
            if found is None:
                if l1_only:
                    return None
                raise NotFoundError("cursor", "expired or unknown: request the first page again")
            page, served, level = found
            if page.user_id not in (user_id, COLD_USER):
                raise NotFoundError("cursor", "belongs to another user")
            if not self._canary_fault(served, routing, l1_only):
                return None
        else:
            offset = 0
            served = routing.for_user(user_id)
            if not self._canary_fault(served, routing, l1_only):
                return None
            toggles = self.ctx.toggles.current()
            variant = self.audience.variant(user_id, override, toggles)
            if toggles.kill_switch:
                return None if l1_only else self._fallback_feed(user_id, k, variant, t0, served)
            key = feed_key(variant, user_id, toggles, served)
            if refresh:
                pointer, level = None, "miss"
            elif l1_only:  # the entry itself: what a prepared repeat is checked against
                entry = self.ctx.cache.l1.entry(key)
                pointer, level = (entry[0], "l1") if entry is not None else (None, "miss")
            else:
                pointer, level = self.ctx.cache.get(key, s.feed_ttl_s)
            found, window = None, None
            if pointer is not None:
                found = self._page(pointer.decode(), 0, k, routing, l1_only)
            if found is None:
                if l1_only:
                    return None
                window, level = self._window_for(user_id, variant, toggles, key, served,
                                                 routing, refresh)
                found = self._page(window.meta["snapshot"], 0, k, routing, False, window)
                assert found is not None  # rendered from the window in hand
            page, served = found[0], found[1]
            if self.exploration.on and page.teams is None:  # (no propensity for a merge)
                done = self._explore(page, served, k, window, l1_only, drawn)
                if not isinstance(done, tuple):
                    return done  # None: the window is not in L1; or a draw to store
                page, explore = done
            metrics.of(metrics.assignments, variant).inc()
        if l1_only:
            metrics.of(metrics.cache, "l1", "hit").inc()
        request_id = new_id()
        degraded = level == "miss" and self.ctx.cache.degraded
        if degraded:  # ranked here because the shared cache could not be asked
            metrics.of(metrics.fallbacks, "l2_down").inc()
        self.requests.observe("feed", level, t0, k, len(page.ids))
        self.requests.emit("feed", request_id, user_id, page.variant, level, k, page.ids, t0,
                           served.version, page.cohort, explore, page.teams)
        answer = FeedPage(request_id, user_id, page.variant, served.version, page.cold,
                          False, level, degraded, page.items_json, page.next_cursor)
        if entry is not None and explore is None and not self.exploration.on and (
                routing.fault is None):  # the same page again is all its repeats need
            self.prepared.keep(user_id, k, key, entry, routing, toggles, answer, page)
        return answer

    def _explore(self, page: RenderedPage, served: Served, k: int, window: Window | None,
                 l1_only: bool = False, drawn: Drawn | None = None
                 ) -> tuple[RenderedPage, Explored | None] | Drawn | None:
        """With chance epsilon, a first page drawn from the ranker's top window, kept as a
        snapshot of its own so its cursor pages on without repeats. Either way the window
        and epsilon are logged; a page whose window is no longer cached is not. With
        `l1_only` nothing is stored: None when the window is not in L1, and a draw that
        came up is handed to the full path (`Drawn`), so each request draws once."""
        s = self.ctx.settings
        if window is None:
            key = f"snap:{page.snapshot}"
            raw = (self.ctx.cache.l1.get_many([key])[0] if l1_only
                   else self.ctx.cache.get(key, s.snapshot_ttl_s)[0])
            if raw is None:
                return None if l1_only else (page, None)
            window = Window.decode(raw)
        cat = served.rec.catalog
        top = cat.item_ids[window.items[: self.exploration.window]].tolist()
        if drawn is not None and int(drawn.pick.max()) < len(window.items):
            pick = drawn.pick
        else:  # (a window that changed length since the probe's draw draws afresh)
            with self._rng_lock:
                pick = self.exploration.draw(len(window.items), k, self._rng)
            if pick is not None and l1_only:
                return Drawn(pick)
        logged = Explored.of(window, top, self.exploration, pick is not None)
        if pick is None:
            return page, logged
        shown = window.explored(pick)
        self.ctx.cache.set({f"snap:{shown.meta['snapshot']}": shown.encode()}, s.snapshot_ttl_s)
        return RenderedPage.of(shown, 0, k, cat, served.version), logged

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

    def _page(self, snapshot: str, offset: int, k: int, routing: Routing, l1_only: bool,
              window: Window | None = None) -> tuple[RenderedPage, Served, str] | None:
        """(page, the release that ranked it, cache level) of a snapshot at `offset`: the
        rendered page from L1 while the catalog is unchanged, else rendered from the
        window (given, or read from the cache) and kept. None: the snapshot is not in the
        cache (with `l1_only`: not in L1)."""
        l1, key = self.ctx.cache.l1, f"page:{snapshot}:{offset}:{k}"
        raw = l1.get_many([key])[0]
        if raw is not None:
            page = RenderedPage.decode(raw)
            served = routing.by_version(page.release)
            if served is not None and served.rec.catalog.version == page.catalog:
                return page, served, "l1"
        level = "miss"
        if window is None:
            raw, level = self._lookup(f"snap:{snapshot}", self.ctx.settings.snapshot_ttl_s,
                                      l1_only)
            if raw is None:
                return None
            window = Window.decode(raw)
        made_by = window.meta.get("release", routing.stable.version)
        served = routing.by_version(made_by)
        if served is None:
            raise NotFoundError("cursor", f"made by release {made_by}, which is no longer "
                                "served: request the first page again")
        page = RenderedPage.of(window, offset, k, served.rec.catalog, served.version)
        l1.set_many({key: page.encode()}, self.ctx.settings.feed_ttl_s)
        return page, served, level

    def _lookup(self, key: str, ttl_s: float, l1_only: bool) -> tuple[bytes | None, str]:
        if l1_only:  # uncounted: a miss here is retried (and counted) on the full path
            hit = self.ctx.cache.l1.get_many([key])[0]
            return hit, "l1" if hit is not None else "miss"
        return self.ctx.cache.get(key, ttl_s)

    def _keep(self, key: str, window: Window) -> int:
        """Snapshot under its own id (what cursors point at); the feed key holds its id.
        Returns the bytes written."""
        s, snap = self.ctx.settings, window.meta["snapshot"]
        raw, pointer = window.encode(), snap.encode()
        self.ctx.cache.set({f"snap:{snap}": raw}, s.snapshot_ttl_s)
        self.ctx.cache.set({key: pointer}, s.feed_ttl_s)
        return len(raw) + len(pointer)

    def _window_for(self, user_id: str, variant: str, toggles: Toggles, key: str,
                    served: Served, routing: Routing, refresh: bool = False
                    ) -> tuple[Window, str]:
        """The miss path. A user with no history at all gets the variant's shared cold
        window (ranked once, then a cache hit for every newcomer); anyone else is ranked.
        An interleaved user is always ranked: each merge tosses its own coins."""
        s, cache = self.ctx.settings, self.ctx.cache
        if routing.interleaved(served):
            window = self._interleaved(user_id, variant, toggles, served, routing)
            self._keep(key, window)
            return window, "miss"
        p = self.audience.profile(user_id, served)
        if p.cold and not len(p.seen) and not refresh:
            shared = feed_key(variant, COLD_USER, toggles, served)
            pointer, level = cache.get(shared, s.feed_ttl_s)
            if pointer is not None:
                raw, _ = cache.get(f"snap:{pointer.decode()}", s.snapshot_ttl_s)
                if raw is not None:
                    cache.set({key: pointer}, s.feed_ttl_s)
                    return Window.decode(raw), level
            window = self.rank(COLD_USER, variant, toggles, served, p)
            self._keep(shared, window)
            cache.set({key: window.meta["snapshot"].encode()}, s.feed_ttl_s)
            return window, "miss"
        window = self.rank(user_id, variant, toggles, served, p)
        self._keep(key, window)
        return window, "miss"

    def _interleaved(self, user_id: str, variant: str, toggles: Toggles, served: Served,
                     routing: Routing) -> Window:
        """The stable and the canary window merged by team draft (window.interleave); the
        user's live history is read once for both."""
        both = (routing.stable, served)
        live = self.ctx.state.history(user_id, max(x.rec.ranker.max_history for x in both) * 2)
        stable, canary = (self.rank(user_id, variant, toggles, x,
                                    self.audience.profile(user_id, x, live)) for x in both)
        with self._rng_lock:
            return interleave(stable, routing.stable.rec.catalog, canary,
                              served.rec.catalog, self._rng)

    def rank(self, user_id: str, variant: str, toggles: Toggles, served: Served,
             p: UserProfile | None = None) -> Window:
        """A fresh window of `feed_window` items for the user, not cached."""
        p = p if p is not None else self.audience.profile(user_id, served)
        return rank_window(served.rec, served.version, user_id, variant, p,
                           self.audience.weights(variant, toggles, served),
                           self.ctx.settings.feed_window, int(self.ctx.clock()),
                           inputs=self.exploration.on)

    def _fallback_feed(self, user_id: str, k: int, variant: str, t0: float,
                       served: Served) -> FeedPage:
        request_id = new_id()
        p = self.audience.profile(user_id, served)
        cat = p.catalog
        items = [{"item_id": str(cat.item_ids[i]), "title": str(cat.titles[i]), "score": 0.0,
                  "source": "fallback",
                  "reasons": {"trending": round(float(np.log1p(cat.trending[i])), 5)}}
                 for i in served.rec.fallback(p, k)]
        self.ctx.metrics.of(self.ctx.metrics.fallbacks, "kill_switch").inc()
        self.requests.observe("feed", "fallback", t0, k, len(items))
        self.requests.emit("feed", request_id, user_id, variant, "fallback", k,
                           [it["item_id"] for it in items], t0, served.version, cohort(p))
        return FeedPage(request_id, user_id, variant, served.version, p.cold, True,
                        "fallback", False, orjson.dumps(items), None)

    # ---- refresh-ahead ----------------------------------------
    def refresh_soon(self, user_id: str) -> None:
        """Queue the user for a re-rank off the request path (dropped when the queue is full:
        their next feed is then ranked on request, as without refresh-ahead)."""
        if user_id not in self._refresh_pending and not self._refresh_q.full():
            self._refresh_pending.add(user_id)
            self._refresh_q.put_nowait(user_id)

    def wake(self) -> None:
        """Unblock the refresh-ahead loop (at shutdown)."""
        with contextlib.suppress(queue.Full):
            self._refresh_q.put_nowait("")

    def refresh_ahead_loop(self, stop: threading.Event) -> None:
        """Re-rank users right after their engagement invalidated them, so their next feed
        is a hit that already reflects what they did."""
        while not stop.is_set():
            try:
                user_id = self._refresh_q.get(timeout=0.5)
            except queue.Empty:
                continue
            if not user_id:
                continue
            try:
                toggles = self.ctx.toggles.current()
                if toggles.kill_switch:
                    continue
                variant = self.audience.variant(user_id, None, toggles)
                routing = self.releases.routing
                served = routing.for_user(user_id)
                key = feed_key(variant, user_id, toggles, served)
                if self.ctx.cache.l1.get_many([key])[0] is None:  # not already re-ranked
                    self._window_for(user_id, variant, toggles, key, served, routing)
                    self.ctx.metrics.refresh_ahead.inc()
            except Exception:
                log.exception("refresh-ahead failed for a user")
            finally:
                self._refresh_pending.discard(user_id)

    # ---- cache warm plan ----------------------------------------
    def warm(self, max_users: int | None = None) -> WarmManifest:
        """Precompute feed windows for the release's most active users, each under the
        variant they are assigned, into L1 and the shared L2. Returns the manifest."""
        t0 = time.perf_counter()
        m = self.releases.rec.model
        order = np.argsort(-np.diff(m.hist_indptr), kind="stable")
        if max_users is not None:
            order = order[:max_users]
        toggles, routing = self.ctx.toggles.current(), self.releases.routing
        objects = size = 0
        variants: dict[str, int] = {}
        for u in order.tolist():
            user_id = str(m.user_ids[u])
            variant = self.audience.variant(user_id, None, toggles)
            served = routing.for_user(user_id)
            window = (self._interleaved(user_id, variant, toggles, served, routing)
                      if routing.interleaved(served)
                      else self.rank(user_id, variant, toggles, served))
            size += self._keep(feed_key(variant, user_id, toggles, served), window)
            objects += 2
            variants[variant] = variants.get(variant, 0) + 1
        l2 = self.ctx.cache.l2
        logging.getLogger("novarank.cache").info(
            "warm plan: %d users, %d objects, %.1f MB in %.2f s", len(order), objects,
            size / 1e6, time.perf_counter() - t0)
        return WarmManifest(self.releases.release, len(order), objects, size,
                            round(time.perf_counter() - t0, 3), variants,
                            l2.name if l2 is not None else None)
