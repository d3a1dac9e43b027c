"""Engagement ingestion: validate each event on its own, store, count, invalidate, emit;
and forgetting a user, the other write of user data."""

from __future__ import annotations

import hashlib
import math
import time
from collections import defaultdict
from dataclasses import replace
from typing import Any

from novarank.data.events import PREFERENCE_WEIGHT, SEEN_EVENTS, Event
from novarank.errors import InputError, TooLargeError
from novarank.online.audience import Audience
from novarank.online.context import ServiceContext
from novarank.online.feeds import FeedPath
from novarank.online.follower import ReleaseFollower
from novarank.online.invalidation import Invalidation
from novarank.online.live import LiveCatalog
from novarank.online.requests import RequestLog
from novarank.online.results import EventResult, Forgotten, IngestResult
from novarank.stores.state import Engagement
from novarank.telemetry.schemas import user_key
from novarank.telemetry.sinks import StreamWriter

MAX_VALUE = 1e6  # an event's value: a watched fraction, or a weight a client may send
MAX_POSITION = 10_000  # a slot in a feed page (int32 in the lake)
MAX_ID = 64  # request_id and event_id, as the lake stores them


def _shown(value: Any) -> str:
    """A rejected value for an error message: short, and printable whatever it held."""
    return repr(value)[:40].encode("utf-8", "backslashreplace").decode()


def _utf8(text: str) -> bool:
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def _storable(text: Any) -> bool:
    """A string the lake can hold as given (at most MAX_ID characters, valid UTF-8)."""
    return isinstance(text, str) and len(text) <= MAX_ID and _utf8(text)


def _event_id(raw: dict[str, Any], ev: Engagement) -> str:
    """The client's `event_id` (an idempotency key), else a digest of what the event says:
    the same event sent twice is one event in the lake."""
    given = raw.get("event_id")
    if given is not None:
        return str(given)  # validated by _parse_event
    key = (f"{raw.get('type')}|{ev.user_id}|{ev.item_id}|{ev.ts}|{raw.get('request_id')}|"
           f"{raw.get('position')}|{ev.value!r}")
    return hashlib.sha256(key.encode()).hexdigest()[:32]


ENGAGEMENT_KINDS = {"impression": Event.IMPRESSION, "click": Event.CLICK, "watch": Event.WATCH,
                    "like": Event.LIKE, "share": Event.SHARE, "skip": Event.SKIP}
_TELEMETRY_TYPE = {Event.IMPRESSION: "impression", Event.CLICK: "click"}


class Ingest:
    def __init__(self, ctx: ServiceContext, releases: ReleaseFollower, audience: Audience,
                 live: LiveCatalog, feeds: FeedPath, invalidation: Invalidation,
                 requests: RequestLog) -> None:
        self.ctx, self.releases, self.audience, self.live = ctx, releases, audience, live
        self.feeds, self.invalidation, self.requests = feeds, invalidation, requests

    def ingest(self, batch: list[Any]) -> IngestResult:
        """Validate each event on its own (one bad event never costs its neighbours), store
        the valid ones, then count only those stored now: an event whose id is already
        stored (a client's retry after a lost answer) is acknowledged again, not re-counted."""
        max_batch = self.ctx.settings.max_batch
        if len(batch) > max_batch:
            raise TooLargeError("events", f"at most {max_batch} events per "
                                f"request, got {len(batch)}")
        now = int(time.time())
        refused: dict[int, InputError] = {}
        valid: list[tuple[Any, Engagement]] = []
        for n, raw in enumerate(batch):
            try:
                ev = self._parse_event(raw, now)
            except InputError as exc:
                refused[n] = exc
                self._count_refusal(raw, exc)
                continue
            valid.append((raw, replace(ev, event_id=_event_id(raw, ev))))
        fresh = iter(self._store_events(valid))
        results = [EventResult(n, False, field=refused[n].field, error=str(refused[n]))
                   if n in refused else EventResult(n, True, duplicate=not next(fresh))
                   for n in range(len(batch))]
        stored_now = [r.accepted and not r.duplicate for r in results if r.accepted]
        self._count_events([pair for pair, new in zip(valid, stored_now, strict=True) if new],
                           now)
        return IngestResult(len(valid), len(refused), stored_now.count(False), results)

    def _count_refusal(self, raw: Any, exc: InputError) -> None:
        """A refused event: counted by its type and reported as an error event."""
        kind = raw.get("type") if isinstance(raw, dict) else None
        label = kind if isinstance(kind, str) and kind in ENGAGEMENT_KINDS else "invalid"
        metrics = self.ctx.metrics
        metrics.of(metrics.events, label, "rejected").inc()
        rid = raw.get("request_id") if isinstance(raw, dict) else None
        self.requests.error("/v1/events", 422, "invalid_event", str(exc),
                            request_id=rid if _storable(rid) else None)

    def _store_events(self, valid: list[tuple[Any, Engagement]]) -> list[bool]:
        """Write the valid events; True for each stored now (impressions, kept only in
        telemetry, are always new). Telemetry gets every valid event, repeats included:
        the lake counts distinct event ids, and a retry after a crash between the store
        and the telemetry is then the copy that reaches the lake."""
        events = self.ctx.events
        stream = isinstance(events.sink, StreamWriter)
        if stream:
            # the stream first: if it is down the batch is refused (503) and nothing was
            # kept anywhere, so the client's retry is the only copy
            events.write_now(self._event_rows(valid))
        fresh = iter(self.ctx.state.add_engagement(
            [ev for _, ev in valid if ev.event != Event.IMPRESSION]))
        mask = [ev.event == Event.IMPRESSION or next(fresh) for _, ev in valid]
        if not stream:  # the lake sink: durable first, telemetry follows the store
            self._emit_client_events(self._event_rows(valid))
        return mask

    def _event_rows(self, valid: list[tuple[Any, Engagement]]) -> dict[str, list[dict[str, Any]]]:
        toggles = self.ctx.toggles.current()
        routing = self.releases.routing
        out: dict[str, list[dict[str, Any]]] = defaultdict(list)
        for raw, ev in valid:
            kind = Event(ev.event)
            out[_TELEMETRY_TYPE.get(kind, "engagement")].append({
                "event_id": ev.event_id, "ts": ev.ts * 1000,
                "request_id": raw.get("request_id"),
                "user_key": user_key(ev.user_id),
                "variant": self.audience.variant(ev.user_id, None, toggles),
                "release": routing.for_user(ev.user_id).version,
                "item_id": ev.item_id, "kind": kind.name.lower(), "value": ev.value,
                "position": raw.get("position")})
        return out

    def _count_events(self, fresh: list[tuple[Any, Engagement]], now: int) -> None:
        """What a newly stored event moves: metrics, live trending (bounded per user),
        the user's cached feeds and their refresh-ahead."""
        metrics = self.ctx.metrics
        trend: dict[str, float] = defaultdict(float)
        touched: set[str] = set()
        for _, ev in fresh:
            kind = Event(ev.event)
            metrics.of(metrics.events, kind.name.lower(), "accepted").inc()
            if PREFERENCE_WEIGHT[kind] > 0:  # bounded per user (online/influence.py)
                granted = self.live.influence.admit(ev.user_id, ev.item_id,
                                               PREFERENCE_WEIGHT[kind], now)
                if granted > 0:
                    trend[ev.item_id] += granted
                if granted < PREFERENCE_WEIGHT[kind]:
                    metrics.trending_capped.inc(PREFERENCE_WEIGHT[kind] - granted)
            if kind in SEEN_EVENTS:
                touched.add(ev.user_id)
        if trend:
            self.live.count(trend, now)
        for user in touched:
            self.invalidation.invalidate(user)
            self.feeds.refresh_soon(user)

    def _emit_client_events(self, telemetry: dict[str, list[dict[str, Any]]]) -> None:
        """The lake sink buffers client events like request telemetry and flushes on
        SIGTERM (a SIGKILL can lose up to one flush interval). With the stream sink they
        are written before the answer instead (see ingest)."""
        for kind, rows in telemetry.items():
            for row in rows:
                self.ctx.events.emit(kind, row)

    def _parse_event(self, raw: Any, now: int) -> Engagement:
        """Accept an event only if every sink can store it exactly as given: the bounds of
        its telemetry schema (int32 position, finite numbers, valid UTF-8), so a bad event
        is refused here and never poisons a flush its neighbours are in."""
        if not isinstance(raw, dict):
            raise InputError("event", "must be a JSON object")
        kind = raw.get("type")
        if not isinstance(kind, str) or kind not in ENGAGEMENT_KINDS:
            raise InputError("type", f"must be one of {sorted(ENGAGEMENT_KINDS)}, got "
                             f"{_shown(kind)}")
        for field in ("user_id", "item_id"):
            v = raw.get(field)
            if not isinstance(v, str) or not 1 <= len(v) <= 256:
                raise InputError(field, "must be a string of 1 to 256 characters")
            if not _utf8(v):
                raise InputError(field, "must be valid UTF-8 (no lone surrogates)")
        if raw["item_id"] not in self.releases.rec.catalog.index:
            raise InputError("item_id", f"unknown item '{raw['item_id']}'")
        ts = raw.get("ts", now)
        if not isinstance(ts, int) or isinstance(ts, bool) or not 0 < ts <= now + 300:
            raise InputError("ts", "must be unix seconds, not more than 5 minutes ahead")
        value = raw.get("value", 1.0)
        if not isinstance(value, int | float) or isinstance(value, bool):
            raise InputError("value", "must be a number")
        if not math.isfinite(value) or abs(value) > MAX_VALUE:
            raise InputError("value", f"must be a finite number within +-{MAX_VALUE:g}")
        if kind == "watch" and not 0.0 <= value <= 1.0:
            raise InputError("value", f"watched fraction must be within [0, 1], got {value}")
        for field in ("request_id", "event_id"):
            if raw.get(field) is not None and not _storable(raw[field]):
                raise InputError(field, f"must be a valid UTF-8 string of at most {MAX_ID} "
                                 "characters")
        position = raw.get("position")
        if position is not None and (not isinstance(position, int) or isinstance(position, bool)
                                     or not 0 <= position <= MAX_POSITION):
            raise InputError("position", f"must be an integer within [0, {MAX_POSITION}]")
        return Engagement(raw["user_id"], raw["item_id"], int(ENGAGEMENT_KINDS[kind]),
                          float(value), ts)

    def forget(self, user_id: str) -> Forgotten:
        n = self.audience.forget(user_id)
        self.invalidation.invalidate(user_id)
        return Forgotten(user_id, n, True)
