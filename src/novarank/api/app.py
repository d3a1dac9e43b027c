"""create_app(): settings in, FastAPI app out. The service is built in the lifespan."""

from __future__ import annotations

import gc
import logging
import math
import os
import sys
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.routing import APIRoute
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from novarank.api import audit, openapi
from novarank.api.common import JSON
from novarank.api.errors import http_status
from novarank.api.fastpath import FastFeed
from novarank.api.limits import BodyLimit
from novarank.api.ratelimit import Buckets
from novarank.api.refuse import EarlyRefusal
from novarank.api.routes import admin, events, feeds, items, ops, users
from novarank.config import ServiceSettings
from novarank.errors import NovarankError, RateLimited
from novarank.keys import Keyring
from novarank.memory import cap_arenas
from novarank.online.releases import ReleaseFailure
from novarank.online.service import RankingService
from novarank.version import __version__

log = logging.getLogger("novarank.api")


def _error(status: int, code: str, message: str, field: str | None = None,
           request: Request | None = None, release: str | None = None) -> JSON:
    """The JSON error body; also an `error` telemetry event (the error rate's source)."""
    if request is not None:
        # the release the request was routed to, when its route knows it (feeds do)
        release = release or getattr(request.state, "release", None)
        service = getattr(request.app.state, "service", None)
        if service is not None:
            route = getattr(request.scope.get("route"), "path", request.url.path)
            user = request.path_params.get("user_id") if request.path_params else None
            service.requests.error(route, status, code, message, user_id=user, release=release)
    body = {"field": field, "message": message, "code": code}
    if release is not None:
        body["release"] = release
    return JSON({"error": body}, status_code=status)


class RequestMetrics:
    """Pure ASGI middleware: requests by route template and status, latency by route."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        status = 500
        status_sent = False
        t0 = time.perf_counter()

        async def send_wrapper(message: Message) -> None:
            nonlocal status, status_sent
            if message["type"] == "http.response.start":
                status, status_sent = message["status"], True
            await send(message)

        try:
            await self.app(scope, receive, send_wrapper)
        except Exception as exc:
            # answered here rather than re-raised: a re-raised error makes the server drop
            # the keep-alive connection, failing the client's next, healthy request too
            if status_sent:
                raise
            log.exception("unhandled error on %s", scope.get("path"))
            status = 500
            response = _error(500, "internal", f"internal error ({type(exc).__name__})",
                              request=Request(scope))
            await response(scope, receive, send)
        finally:
            service = getattr(scope["app"].state, "service", None) if "app" in scope else None
            route = scope.get("route")
            path = getattr(route, "path", "unmatched")
            if service is not None:
                audit.record(scope, status, service, service.settings.audit_log)
                service.metrics.of(service.metrics.requests, path, str(status)).inc()
                service.metrics.of(service.metrics.request_latency, path, "all").observe(
                    time.perf_counter() - t0)


class App(FastAPI):
    """FastAPI with the feed tried first, before any framework layer (api/fastpath.py);
    whatever that path does not answer takes the full way."""

    fast_feed: FastFeed | None = None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        fast = self.fast_feed
        if fast is not None and scope["type"] == "http" and await fast.answer(scope, send):
            return
        await super().__call__(scope, receive, send)


def _allowed(app: FastAPI, path: str) -> list[str]:
    methods: set[str] = set()
    for route in app.routes:
        if isinstance(route, APIRoute) and route.path_regex.match(path):
            methods |= route.methods
    return sorted(methods)


def app_from_env() -> FastAPI:
    """uvicorn factory: every worker reads its settings from NOVARANK_* variables."""
    from novarank.logs import configure

    configure(os.environ.get("NOVARANK_LOG_LEVEL", "INFO"))
    settings = ServiceSettings()
    cap_arenas(settings.malloc_arenas)  # before the service starts its threads
    sys.setswitchinterval(settings.switch_interval_ms / 1000)  # the loop waits less for the GIL
    return create_app(settings)


def create_app(settings: ServiceSettings | None = None,
               service: RankingService | None = None) -> FastAPI:
    """Build the app. `service` may be injected (tests, benchmarks); else built on startup."""
    settings = settings or ServiceSettings()

    @asynccontextmanager
    async def lifespan(app: App) -> AsyncIterator[None]:
        app.state.service = service or RankingService(settings)
        entries = app.state.service.metrics.entries
        for table, sized in (("rate_buckets", app.state.buckets),
                             ("verified_keys", app.state.keyring)):
            entries.labels(table).set_function(sized.size)
        # The release and catalog are millions of long-lived objects: move them out of the
        # collector's reach, so collections on the request path scan only new garbage.
        gc.collect()
        gc.freeze()
        app.fast_feed = FastFeed(app.state.service, app.state.keyring, app.state.auth_on,
                                 app.state.buckets, settings.feed_threads)
        try:
            yield
        finally:
            app.fast_feed.close()
            app.fast_feed = None
            app.state.service.close()  # flush telemetry buffers, stop background threads
            gc.unfreeze()

    app = App(title="novarank", version=__version__, lifespan=lifespan,
                  description="Personalized ranking with locked releases, tiered caching, "
                              "A/B variants and safety toggles.")
    token = settings.admin_token.get_secret_value() if settings.admin_token else None
    app.state.keyring = Keyring(settings.api_keys_file, token)
    app.state.auth_on = settings.auth == "on"
    app.state.buckets = Buckets(settings.rate_limits)
    if not app.state.auth_on:
        log.warning("AUTHENTICATION IS OFF (NOVARANK_AUTH=off): anyone who can reach this "
                    "port can read personal history, erase users, change the catalog and "
                    "post events; only /v1/admin still needs a key. Development only.")
    for module in (feeds, items, users, events, admin, ops):
        app.include_router(module.router)
    app.add_middleware(BodyLimit, max_body_bytes=settings.max_body_bytes)
    # before the body is read: a key out of budget costs a header lookup, not a request
    app.add_middleware(EarlyRefusal, buckets=app.state.buckets, keyring=app.state.keyring,
                       auth_on=app.state.auth_on)
    app.add_middleware(RequestMetrics)  # outermost: it counts the 413s too
    openapi.install(app)

    @app.exception_handler(StarletteHTTPException)
    async def _http(request: Request, exc: StarletteHTTPException) -> JSON:
        """Framework answers (unknown path, wrong method, unparsable body) in our shape; a
        405 lists every method the path has (its routes are registered one per method)."""
        code = {400: "malformed", 404: "not_found", 405: "method_not_allowed"}.get(
            exc.status_code, "http_error")
        response = _error(exc.status_code, code, str(exc.detail), request=request)
        if exc.status_code == 405:
            response.headers["Allow"] = ", ".join(_allowed(app, request.url.path))
        return response

    @app.exception_handler(NovarankError)
    async def _domain(request: Request, exc: NovarankError) -> JSON:
        """Every domain error by its kind (api/errors.py); a server-side one (a release or
        a setting) is a 500, never the client's 422."""
        status, code = http_status(exc)
        if isinstance(exc, RateLimited):  # counted, not an error event: a flood of refusals
            request.app.state.service.metrics.of(  # must not become a flood of writes
                request.app.state.service.metrics.rate_limited, exc.kind).inc()
            response = _error(status, code, str(exc))
            response.headers["Retry-After"] = str(max(1, math.ceil(exc.retry_after)))
            return response
        if isinstance(exc, ReleaseFailure):
            return _error(status, exc.code, str(exc), request=request, release=exc.release)
        if status >= 500:
            log.error("server-side error on %s: %s", request.url.path, exc)
        response = _error(status, code, str(exc), getattr(exc, "field", None), request)
        if status == 503:
            response.headers["Retry-After"] = "1"
        elif status == 401:
            response.headers["WWW-Authenticate"] = "Bearer"
        return response

    @app.exception_handler(RequestValidationError)
    async def _validation(request: Request, exc: RequestValidationError) -> JSON:
        first = exc.errors()[0]
        loc = [str(p) for p in first.get("loc", ()) if p not in ("body", "query", "path",
                                                                  "header")]
        field = ".".join(loc) or None
        return _error(422, "invalid", f"{field}: {first.get('msg')}" if field
                      else str(first.get("msg")), field, request)

    @app.exception_handler(Exception)
    async def _unexpected(request: Request, exc: Exception) -> JSON:
        log.exception("unhandled error on %s", request.url.path)
        return _error(500, "internal", f"internal error ({type(exc).__name__})",
                      request=request)

    return app
