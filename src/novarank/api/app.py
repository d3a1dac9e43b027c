"""create_app(): settings in, FastAPI app out. The service is built in the lifespan."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from novarank import __version__
from novarank.api.common import JSON
from novarank.api.routes import admin, events, feeds, items, ops, users
from novarank.config import ServiceSettings
from novarank.errors import AuthError, InputError, NovarankError
from novarank.online.service import RankingService


def _error(status: int, code: str, message: str, field: str | None = None) -> JSON:
    return JSON({"error": {"field": field, "message": message, "code": code}},
                status_code=status)


class RequestMetrics:
    """Pure ASGI middleware: requests by route template and status, latency by route."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        status = 500
        t0 = time.perf_counter()

        async def send_wrapper(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, send_wrapper)
        finally:
            service = getattr(scope["app"].state, "service", None) if "app" in scope else None
            route = scope.get("route")
            path = getattr(route, "path", "unmatched")
            if service is not None:
                service.metrics.of(service.metrics.requests, path, str(status)).inc()
                service.metrics.of(service.metrics.request_latency, path, "all").observe(
                    time.perf_counter() - t0)


def app_from_env() -> FastAPI:
    """uvicorn factory: every worker reads its settings from NOVARANK_* variables."""
    return create_app(ServiceSettings())


def create_app(settings: ServiceSettings | None = None,
               service: RankingService | None = None) -> FastAPI:
    """Build the app. `service` may be injected (tests, benchmarks); else built on startup."""
    settings = settings or ServiceSettings()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        app.state.service = service or RankingService(settings)
        try:
            yield
        finally:
            app.state.service.close()  # flush telemetry buffers, stop background threads

    app = FastAPI(title="novarank", version=__version__, lifespan=lifespan,
                  description="Personalized ranking with locked releases, tiered caching, "
                              "A/B variants and safety toggles.")
    for module in (feeds, items, users, events, admin, ops):
        app.include_router(module.router)
    app.add_middleware(RequestMetrics)

    @app.exception_handler(InputError)
    async def _input(_: Request, exc: InputError) -> JSON:
        code = {404: "not_found", 413: "too_large"}.get(exc.status, "invalid")
        return _error(exc.status, code, str(exc), exc.field)

    @app.exception_handler(AuthError)
    async def _auth(_: Request, exc: AuthError) -> JSON:
        return _error(exc.status, "unauthorized" if exc.status == 401 else "forbidden", str(exc))

    @app.exception_handler(NovarankError)
    async def _other(_: Request, exc: NovarankError) -> JSON:
        return _error(422, "invalid", str(exc))

    @app.exception_handler(RequestValidationError)
    async def _validation(_: Request, exc: RequestValidationError) -> JSON:
        first = exc.errors()[0]
        loc = [str(p) for p in first.get("loc", ()) if p not in ("body", "query", "path",
                                                                  "header")]
        field = ".".join(loc) or None
        return _error(422, "invalid", f"{field}: {first.get('msg')}" if field
                      else str(first.get("msg")), field)

    return app
