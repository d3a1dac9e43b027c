"""Shared pieces of the HTTP layer: JSON responses, the service dependency, parameters."""

from __future__ import annotations

from typing import Annotated, Any

import orjson
from fastapi import Depends, Request
from fastapi.responses import JSONResponse

from novarank.errors import InputError
from novarank.online.service import RankingService


class JSON(JSONResponse):
    """orjson-rendered JSON: several times cheaper than FastAPI's default encoder. A
    JSONResponse, so the OpenAPI document shows each route's response model (FastAPI
    documents any other response class as a plain string)."""

    def render(self, content: Any) -> bytes:
        return orjson.dumps(content)


def errors(*codes: int) -> dict[int | str, dict[str, Any]]:
    """OpenAPI entries for the error answers a route gives, all in the ErrorResponse shape."""
    from novarank.api.models import ErrorResponse

    what = {400: "malformed request", 401: "no API key, or an unknown or revoked one",
            403: "the key lacks the route's scope (or admin is disabled)", 404: "no such resource",
            413: "request too large",
            422: "an argument breaks a rule (the field is named)",
            429: "over the key's rate budget: retry after Retry-After",
            500: "server-side failure (names the release when a release failed)",
            503: "a shared store is down: nothing of the request was kept, retry"}
    return {c: {"model": ErrorResponse, "description": what[c]} for c in codes}


async def get_service(request: Request) -> RankingService:
    # async on purpose: FastAPI runs a plain `def` dependency in the thread pool (~170 us)
    return request.app.state.service


Service = Annotated[RankingService, Depends(get_service)]


def int_param(raw: str | None, name: str, default: int) -> int:
    """A query parameter read by hand (the hot paths skip FastAPI's parameter machinery)."""
    if raw is None:
        return default
    try:
        return int(raw)
    except ValueError:
        raise InputError(name, f"must be an integer, got {raw!r}") from None
