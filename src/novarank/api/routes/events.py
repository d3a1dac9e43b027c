"""Engagement ingestion."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Body, Request

from novarank.api.auth import EVENTS
from novarank.api.common import JSON, Service, errors
from novarank.api.models import EventIn, EventsResponse
from novarank.api.ratelimit import spend
from novarank.errors import InputError

router = APIRouter(prefix="/v1", tags=["events"],
                   responses=errors(400, 401, 403, 413, 422, 429, 500, 503),
                   dependencies=[EVENTS])


@router.post("/events", response_model=EventsResponse, response_class=JSON,
             openapi_extra={"requestBody": {"content": {"application/json": {"schema": {
                 "type": "array", "items": EventIn.model_json_schema()}}}}})
def post_events(request: Request, service: Service, batch: Any = Body(...)) -> JSON:
    """A batch of impression/click/watch/like/share/skip events. Each event is accepted or
    rejected on its own (with the field and rule); accepted events are kept even when
    a neighbour is rejected."""
    if isinstance(batch, dict) and isinstance(batch.get("events"), list):
        batch = batch["events"]
    if not isinstance(batch, list):
        raise InputError("events", "the body must be a JSON array of events "
                         "(or an object with an 'events' array)")
    spend(request, "events", len(batch))  # the whole batch or none of it
    return JSON(service.engagement.ingest(batch))
