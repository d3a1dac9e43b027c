"""Engagement ingestion: validate each event on its own, store, count, invalidate, emit.
A mixin of RankingService."""

from __future__ import annotations

import time
from collections import defaultdict
from typing import Any

from novarank.data.events import PREFERENCE_WEIGHT, SEEN_EVENTS, Event
from novarank.errors import InputError, TooLargeError
from novarank.stores.state import Engagement
from novarank.telemetry.schemas import user_key
from novarank.telemetry.sinks import StreamWriter

ENGAGEMENT_KINDS = {"impression": Event.IMPRESSION, "click": Event.CLICK, "watch": Event.WATCH,
                    "like": Event.LIKE, "share": Event.SHARE, "skip": Event.SKIP}
_TELEMETRY_TYPE = {Event.IMPRESSION: "impression", Event.CLICK: "click"}


class EngagementCalls:
    # ---- engagement ----------------------------------------
    def ingest(self, batch: list[Any]) -> dict[str, Any]:
        """Validate each event on its own: one bad event never costs its neighbours."""
        if len(batch) > self.settings.max_batch:
            raise TooLargeError("events", f"at most {self.settings.max_batch} events per "
                                f"request, got {len(batch)}")
        now = int(time.time())
        results: list[dict[str, Any]] = []
        rows: list[Engagement] = []
        trend: dict[str, float] = defaultdict(float)
        touched: set[str] = set()
        telemetry: dict[str, list[dict[str, Any]]] = defaultdict(list)
        toggles = self.toggles.current()
        for n, raw in enumerate(batch):
            try:
                ev = self._parse_event(raw, now)
            except InputError as exc:
                results.append({"index": n, "accepted": False, "field": exc.field,
                                "error": str(exc)})
                kind = raw.get("type") if isinstance(raw, dict) else None
                label = kind if isinstance(kind, str) and kind in ENGAGEMENT_KINDS else "invalid"
                self.metrics.of(self.metrics.events, label, "rejected").inc()
                self.record_error("/v1/events", 422, "invalid_event", str(exc),
                                  request_id=raw.get("request_id")
                                  if isinstance(raw, dict) and isinstance(
                                      raw.get("request_id"), str) else None)
                continue
            results.append({"index": n, "accepted": True})
            kind = Event(ev.event)
            self.metrics.of(self.metrics.events, kind.name.lower(), "accepted").inc()
            if kind != Event.IMPRESSION:
                rows.append(ev)
            if PREFERENCE_WEIGHT[kind] > 0:
                trend[ev.item_id] += PREFERENCE_WEIGHT[kind]
            if kind in SEEN_EVENTS:
                touched.add(ev.user_id)
            telemetry[_TELEMETRY_TYPE.get(kind, "engagement")].append({
                "ts": ev.ts * 1000, "request_id": raw.get("request_id"),
                "user_key": user_key(ev.user_id), "variant": self._variant(ev.user_id, None,
                                                                           toggles),
                "release": self.routing.for_user(ev.user_id).version,
                "item_id": ev.item_id, "kind": kind.name.lower(), "value": ev.value,
                "position": raw.get("position") if isinstance(raw.get("position"), int)
                else None})
        self.state.add_engagement(rows)  # durable first: counters and caches are derived
        self._emit_client_events(telemetry)
        if trend:
            self.counters.add(trend, now)
        for user in touched:
            self.invalidate(user)
            if user not in self._refresh_pending and not self._refresh_q.full():
                self._refresh_pending.add(user)
                self._refresh_q.put_nowait(user)
        accepted = sum(r["accepted"] for r in results)
        return {"accepted": accepted, "rejected": len(results) - accepted, "results": results}

    def _emit_client_events(self, telemetry: dict[str, list[dict[str, Any]]]) -> None:
        """Client events reach a Redis Stream before the HTTP answer (a replica killed after
        acknowledging loses none); the lake sink buffers them like request telemetry and
        flushes on SIGTERM (a SIGKILL can lose up to one flush interval)."""
        if isinstance(self.events.sink, StreamWriter):
            self.events.write_now(telemetry)
        else:
            for kind, rows in telemetry.items():
                for row in rows:
                    self.events.emit(kind, row)

    def _parse_event(self, raw: Any, now: int) -> Engagement:
        if not isinstance(raw, dict):
            raise InputError("event", "must be a JSON object")
        kind = raw.get("type")
        if not isinstance(kind, str) or kind not in ENGAGEMENT_KINDS:
            raise InputError("type", f"must be one of {sorted(ENGAGEMENT_KINDS)}, got {kind!r}")
        for field in ("user_id", "item_id"):
            v = raw.get(field)
            if not isinstance(v, str) or not 1 <= len(v) <= 256:
                raise InputError(field, "must be a string of 1 to 256 characters")
        if raw["item_id"] not in self.rec.catalog.index:
            raise InputError("item_id", f"unknown item '{raw['item_id']}'")
        ts = raw.get("ts", now)
        if not isinstance(ts, int) or isinstance(ts, bool) or not 0 < ts <= now + 300:
            raise InputError("ts", "must be unix seconds, not more than 5 minutes ahead")
        value = raw.get("value", 1.0)
        if not isinstance(value, int | float) or isinstance(value, bool):
            raise InputError("value", "must be a number")
        if kind == "watch" and not 0.0 <= value <= 1.0:
            raise InputError("value", f"watched fraction must be within [0, 1], got {value}")
        rid = raw.get("request_id")
        if rid is not None and (not isinstance(rid, str) or len(rid) > 64):
            raise InputError("request_id", "must be a string of at most 64 characters")
        return Engagement(raw["user_id"], raw["item_id"], int(ENGAGEMENT_KINDS[kind]),
                          float(value), ts)
