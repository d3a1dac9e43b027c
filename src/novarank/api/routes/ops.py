"""Liveness, readiness and Prometheus metrics."""

from __future__ import annotations

from fastapi import APIRouter
from fastapi.responses import Response
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from novarank.api.common import JSON, Service

router = APIRouter(tags=["operations"])


@router.get("/healthz", response_class=JSON)
async def healthz() -> JSON:
    """The process is up and serving HTTP."""
    return JSON({"status": "ok"})


@router.get("/readyz", response_class=JSON)
def readyz(service: Service) -> JSON:
    """Release loaded and verified, state store and shared cache reachable."""
    body = service.ready()
    return JSON(body, status_code=200 if body["ready"] else 503)


@router.get("/metrics")
def metrics(service: Service) -> Response:
    service.cache.observe()
    return Response(generate_latest(service.metrics.registry), media_type=CONTENT_TYPE_LATEST)
