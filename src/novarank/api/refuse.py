"""Refuse a key that is out of budget before the app does any work for it.

A flood from one key is mostly refusals, so a refusal must cost far less than the work it
refuses: a catalog upsert or an event batch from a caller whose budget is empty is answered
429 here, from the Authorization header alone (a dict lookup once the key is seen), before
routing, body reading and validation. Refusals are counted in
`novarank_rate_limited_total`, not written as telemetry events, so a flood cannot turn
into a flood of writes. Feeds are charged only when they miss L1, which only the route
knows, so their budget stays in the route (api/routes/feeds.py).
"""

from __future__ import annotations

import math

import orjson
from starlette.types import ASGIApp, Receive, Scope, Send

from novarank.api.auth import bearer
from novarank.api.ratelimit import Buckets, caller, refusal
from novarank.keys import Keyring, Principal

# (method, path prefix, exact) -> (budget kind, route template for the request metrics)
CHARGED = (("PUT", "/v1/items/", False, "catalog", "/v1/items/{item_id}"),
           ("POST", "/v1/events", True, "events", "/v1/events"))


class Template:
    """Stands in for the route the request never reached: RequestMetrics reads `.path`."""

    def __init__(self, path: str) -> None:
        self.path = path


class EarlyRefusal:
    def __init__(self, app: ASGIApp, buckets: Buckets, keyring: Keyring,
                 auth_on: bool) -> None:
        self.app, self.buckets, self.keyring, self.auth_on = app, buckets, keyring, auth_on

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        kind = template = None
        if scope["type"] == "http":
            kind, template = next(((k, t) for method, path, exact, k, t in CHARGED
                                   if scope["method"] == method and (
                                       scope["path"] == path if exact
                                       else scope["path"].startswith(path))), (None, None))
        refused = self._refusal(scope, kind) if kind else None
        if refused is None:
            await self.app(scope, receive, send)
            return
        wait, message = refused
        scope["route"] = Template(template or "")
        service = getattr(scope["app"].state, "service", None) if "app" in scope else None
        if service is not None:
            service.metrics.of(service.metrics.rate_limited, kind).inc()
        body = orjson.dumps({"error": {"field": None, "code": "rate_limited",
                                       "message": message}})
        await send({"type": "http.response.start", "status": 429,
                    "headers": [(b"content-type", b"application/json"),
                                (b"content-length", str(len(body)).encode()),
                                (b"retry-after", str(max(1, math.ceil(wait))).encode())]})
        await send({"type": "http.response.body", "body": body})

    def _refusal(self, scope: Scope, kind: str) -> tuple[float, str] | None:
        """(seconds to wait, the message) when the caller's `kind` budget is empty."""
        principal: Principal | None = None
        if self.auth_on:
            header = next((v for k, v in scope["headers"] if k == b"authorization"), b"")
            principal = bearer(self.keyring, header.decode("latin-1"))
            if principal is None:
                return None  # the app answers 401 in its own words
        client = scope.get("client")
        who, own = caller(principal, client[0] if client else None, kind)
        wait = self.buckets.wait(who, kind, own)
        return (wait, refusal(kind, self.buckets.rate(kind, own), who, wait)) if wait else None
