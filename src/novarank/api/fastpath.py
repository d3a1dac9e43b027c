"""The feed answered before the framework: a pure-ASGI path for `GET /v1/users/{u}/feed`.

A cached feed is a few dict lookups and a bytes join of our code; FastAPI's routing,
middleware and dependency machinery cost several times that: a framework route that does
nothing (`/healthz`) answers about a third as many requests as cached feeds take this path
(bench_floor.py). A miss pays the same toll plus anyio's hop to a worker thread: the same
misses through the full app (`Cache-Control: no-cache`) run at about three quarters of
this path's rate (bench_peer.py). So the feed is tried here first, with the
route's key check, parameters, miss budget, metrics and telemetry: a repeat first page
that its last answer prepared is answered from that (online/prepared.py), any other L1
hit on the event loop, and a miss is ranked on this path's own thread pool (the state and
L2 reads block) and answered from there.

Anything this path does not answer itself — a missing or refused key, a malformed
parameter, an exhausted miss budget, the admin headers (audited, so they take the way the
audit trail sees) — goes on to the full app unchanged, which answers it exactly as before.
A miss that fails is not ranked again: its error rides in the scope to the route
(`FAILED`), which raises it, so the app's handlers answer and count it once. Nothing a
client or an operator relies on is skipped: the request and ranking events are emitted by
the feed path, the request counter and latency are the ones RequestMetrics records.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterable
from concurrent.futures import ThreadPoolExecutor
from functools import lru_cache, partial
from typing import Any
from urllib.parse import parse_qsl

from starlette.types import Scope, Send

from novarank.api.auth import bearer
from novarank.api.ratelimit import Buckets, caller
from novarank.api.routes.feeds import CURSOR, FAILED
from novarank.errors import RateLimited
from novarank.keys import Keyring, Principal
from novarank.online.results import FeedPage

PREFIX, SUFFIX = "/v1/users/", "/feed"
TEMPLATE = "/v1/users/{user_id}/feed"  # the route's label in the request metrics
HEADERS = [(b"content-type", b"application/json")]


def feed_user(path: str) -> str | None:
    """The user id of a feed path, or None for any other path (one path segment, as the
    route's `{user_id}` matches)."""
    if not (path.startswith(PREFIX) and path.endswith(SUFFIX)):
        return None
    user = path[len(PREFIX):-len(SUFFIX)]
    return user if 1 <= len(user) <= 256 and "/" not in user else None


@lru_cache(maxsize=1024)  # a feed's few queries ("k=10") are asked again and again
def feed_params(query: bytes) -> tuple[int, str | None] | None:
    """(k, cursor) when both are well-formed, else None (the route then explains why). A
    query without escapes is split by hand: parse_qsl costs more than the rest of a hit's
    parameter handling."""
    if not query:
        return 10, None
    text = query.decode("latin-1")
    return read_params(parse_qsl(text, keep_blank_values=True) if "%" in text or "+" in text
                       else [(name, value) for name, _, value in
                             (part.partition("=") for part in text.split("&") if part)])


def read_params(pairs: Iterable[tuple[str, str]]) -> tuple[int, str | None] | None:
    """(k, cursor) from a query's (name, value) pairs, the last of each winning."""
    k, cursor = 10, None
    for name, value in pairs:
        if name == "k":
            if not value.isdigit():
                return None
            k = int(value)
        elif name == "cursor":
            if not CURSOR.fullmatch(value):
                return None
            cursor = value
    return k, cursor


class FastFeed:
    """Answers the feed's hits and misses; `answer` returns False for everything else."""

    def __init__(self, service: Any, keyring: Keyring, auth_on: bool, buckets: Buckets,
                 threads: int) -> None:
        self.service, self.keyring, self.auth_on = service, keyring, auth_on
        self.buckets = buckets
        self.pool = ThreadPoolExecutor(threads, thread_name_prefix="nr-feed")
        m = service.metrics
        self._ok = m.of(m.requests, TEMPLATE, "200")
        self._latency = m.of(m.request_latency, TEMPLATE, "all")

    def close(self) -> None:
        self.pool.shutdown(wait=True)

    def _caller(self, headers: list[tuple[bytes, bytes]]) -> tuple[bool, Principal | None]:
        """(may this path answer, the key's principal: None in development mode). Not for
        no or a refused key, nor for the admin-only headers."""
        auth = None
        for name, value in headers:
            if name == b"authorization":
                auth = value
            elif name == b"x-variant-override" or (
                    name == b"cache-control" and b"no-cache" in value):
                return False, None
        if not self.auth_on:
            return True, None
        principal = bearer(self.keyring, auth.decode("latin-1")) if auth else None
        return principal is not None and principal.may("read"), principal

    async def answer(self, scope: Scope, send: Send) -> bool:
        t0 = time.perf_counter()
        if scope["method"] != "GET":
            return False
        user = feed_user(scope["path"])
        if user is None:
            return False
        allowed, principal = self._caller(scope["headers"])
        params = feed_params(scope["query_string"])
        if not allowed or params is None:
            return False
        k, cursor = params
        feeds = self.service.feeds
        body = feeds.repeat(user, k) if cursor is None else None
        if body is not None:
            await self._send(send, body, t0)
            return True
        try:
            page = feeds.from_l1(user, k, cursor, count_failures=False)
        except Exception:  # the full app meets it again, answers and counts it
            return False
        if not isinstance(page, FeedPage):
            if page is None:  # a miss: an explored draw to store (a Drawn) is none
                client = scope.get("client")
                who, rate = caller(principal, client[0] if client else None, "miss")
                try:
                    self.buckets.take(who, "miss", 1.0, rate)
                except RateLimited:  # nothing spent: the full app refuses it with 429
                    return False
            try:
                page = await asyncio.get_running_loop().run_in_executor(
                    self.pool, partial(feeds.feed, drawn=page), user, k, cursor)
            except Exception as exc:  # ranked once: the route raises it, the app answers
                scope[FAILED] = exc
                return False
        await self._send(send, page.json(), t0)
        return True

    async def _send(self, send: Send, body: bytes, t0: float) -> None:
        await send({"type": "http.response.start", "status": 200,
                    "headers": [*HEADERS, (b"content-length", str(len(body)).encode())]})
        await send({"type": "http.response.body", "body": body})
        self._ok.inc()
        self._latency.observe(time.perf_counter() - t0)
