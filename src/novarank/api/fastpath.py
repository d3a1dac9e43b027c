"""The cached feed answered before the framework: a pure-ASGI path for L1 hits.

A cached feed is a few dict lookups and one orjson call, ~20 µs of our code in process;
FastAPI's routing, middleware and dependency machinery around it cost several times that
(one core: ~4,900 req/s through the route, ~11,700 through this path; bench_versions.py
and bench_floor.py). So `GET
/v1/users/{user_id}/feed` is tried here first, with the same key check, parameters,
metrics and telemetry as the route; anything this path does not answer itself — no L1
hit, a missing or refused key, a malformed parameter, the admin headers, any error —
goes on to the full app unchanged, which answers it exactly as before (the route, its
errors and their telemetry). Nothing a client or an operator relies on is skipped: the
request and ranking events are emitted by the feed path, the request counter and
latency are the ones RequestMetrics records.
"""

from __future__ import annotations

import time
from typing import Any
from urllib.parse import parse_qsl

from starlette.types import Scope, Send

from novarank.api.auth import bearer
from novarank.api.routes.feeds import CURSOR
from novarank.keys import Keyring

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


def feed_params(query: bytes) -> tuple[int, str | None] | None:
    """(k, cursor) when both are well-formed, else None (the route then explains why)."""
    k, cursor = 10, None
    if query:
        for name, value in parse_qsl(query.decode("latin-1"), keep_blank_values=True):
            if name == "k":
                if not value.isdigit():
                    return None
                k = int(value)
            elif name == "cursor":
                if not CURSOR.fullmatch(value):
                    return None
                cursor = value
    return k, cursor


class CachedFeed:
    """Answers L1 hits of the feed; `answer` returns False for everything else."""

    def __init__(self, service: Any, keyring: Keyring, auth_on: bool) -> None:
        self.service, self.keyring, self.auth_on = service, keyring, auth_on
        m = service.metrics
        self._ok = m.of(m.requests, TEMPLATE, "200")
        self._latency = m.of(m.request_latency, TEMPLATE, "all")

    def _allowed(self, headers: list[tuple[bytes, bytes]]) -> bool:
        """The read scope, as `authorize` checks it; admin-only headers go the full way."""
        auth = None
        for name, value in headers:
            if name == b"authorization":
                auth = value
            elif name == b"x-variant-override" or (
                    name == b"cache-control" and b"no-cache" in value):
                return False
        if not self.auth_on:
            return True
        principal = bearer(self.keyring, auth.decode("latin-1")) if auth else None
        return principal is not None and principal.may("read")

    async def answer(self, scope: Scope, send: Send) -> bool:
        t0 = time.perf_counter()
        if scope["method"] != "GET":
            return False
        user = feed_user(scope["path"])
        if user is None or not self._allowed(scope["headers"]):
            return False
        params = feed_params(scope["query_string"])
        if params is None:
            return False
        try:
            page = self.service.feeds.from_l1(user, params[0], params[1],
                                              count_failures=False)
        except Exception:  # the full app meets it again, answers and counts it
            return False
        if page is None:
            return False
        body = page.json()
        await send({"type": "http.response.start", "status": 200,
                    "headers": [*HEADERS, (b"content-length", str(len(body)).encode())]})
        await send({"type": "http.response.body", "body": body})
        self._ok.inc()
        self._latency.observe(time.perf_counter() - t0)
        return True
