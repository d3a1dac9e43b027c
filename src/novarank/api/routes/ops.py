"""Liveness, readiness and Prometheus metrics."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import PlainTextResponse, Response
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from novarank.api.auth import authorize
from novarank.api.common import JSON, Service, int_param
from novarank.api.models import Health, Readiness
from novarank.errors import InputError
from novarank.online.service import RankingService

router = APIRouter(tags=["operations"])


@router.get("/healthz", response_model=Health, response_class=JSON)
async def healthz() -> JSON:
    """The process is up and serving HTTP."""
    return JSON({"status": "ok"})


@router.get("/readyz", response_model=Readiness, response_class=JSON,
            responses={503: {"model": Readiness, "description": "not ready (see checks)"}})
def readyz(service: Service) -> JSON:
    """Ready: release verified, state store reachable, background loops alive. A shared
    cache or telemetry sink that is down is reported (`degraded`) but does not fail
    readiness: every replica still serves."""
    body = service.ready()
    return JSON(body, status_code=200 if body["ready"] else 503)


@router.get("/bench/users/{user_id}/echo", include_in_schema=False)
async def echo(request: Request, user_id: str) -> JSON:
    """The framework ceiling the feed's L1 hit is compared with: the same path shape, the
    same hand-parsed parameters and routing lookup, and `size` bytes of JSON, but no cache
    or ranking. Enabled only with bench_routes."""
    service: RankingService = request.app.state.service
    if not service.settings.bench_routes:
        return JSON({"error": {"field": None, "message": "not found", "code": "not_found"}},
                    status_code=404)
    authorize(request, "read")  # the feed's key check too
    if not 1 <= len(user_id) <= 256:
        raise InputError("user_id", "must be 1 to 256 characters")
    request.state.release = service.release_for(user_id)
    size = int_param(request.query_params.get("size"), "size", 1000)
    return JSON({"user_id": user_id, "pad": "x" * max(0, min(size, 1 << 20) - 30)})


@router.get("/metrics", response_class=PlainTextResponse)
def metrics(service: Service) -> Response:
    service.cache.observe()
    return Response(generate_latest(service.metrics.registry), media_type=CONTENT_TYPE_LATEST)


@router.get("/dashboard", include_in_schema=False)
async def dashboard_page() -> Response:
    """The built-in page: live Health and Outcomes tiles of this replica."""
    from novarank.online.dashboard import PAGE

    return Response(PAGE, media_type="text/html")


@router.get("/dashboard/data", response_class=JSON, include_in_schema=False)
def dashboard_data(service: Service) -> JSON:
    """The numbers behind /dashboard, each against its objective (analytics/slo.py)."""
    from novarank.analytics.quality import OfflineQuality
    from novarank.online.dashboard import live_tiles

    quality = OfflineQuality.from_lock(service.releases.lock)
    return JSON({**live_tiles(service.metrics.registry, service.audience.splitter.split, quality),
                 "release": service.release})
