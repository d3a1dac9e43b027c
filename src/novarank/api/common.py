"""Shared pieces of the HTTP layer: JSON responses, the service dependency, admin auth."""

from __future__ import annotations

import hmac
from typing import Annotated, Any

import orjson
from fastapi import Depends, Header, Request
from fastapi.responses import JSONResponse

from novarank.errors import AuthError, ForbiddenError, InputError
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

    what = {400: "malformed request", 401: "missing or wrong credentials",
            403: "not allowed (admin API disabled)", 404: "no such resource",
            413: "request too large", 422: "an argument breaks a rule (the field is named)",
            500: "server-side failure (names the release when a release failed)",
            503: "a shared store is down: nothing of the request was kept, retry"}
    return {c: {"model": ErrorResponse, "description": what[c]} for c in codes}


async def get_service(request: Request) -> RankingService:
    # async on purpose: FastAPI runs a plain `def` dependency in the thread pool (~170 us)
    return request.app.state.service


Service = Annotated[RankingService, Depends(get_service)]


def check_admin(service: RankingService, authorization: str | None) -> None:
    token = service.settings.admin_token
    if token is None:
        raise ForbiddenError("admin API is disabled: set NOVARANK_ADMIN_TOKEN to enable it")
    expected = f"Bearer {token.get_secret_value()}"
    if not authorization or not hmac.compare_digest(authorization, expected):
        raise AuthError("missing or wrong bearer token")


async def require_admin(service: Service,
                        authorization: Annotated[str | None, Header()] = None) -> None:
    check_admin(service, authorization)


Admin = Annotated[None, Depends(require_admin)]


def int_param(raw: str | None, name: str, default: int) -> int:
    """A query parameter read by hand (the hot paths skip FastAPI's parameter machinery)."""
    if raw is None:
        return default
    try:
        return int(raw)
    except ValueError:
        raise InputError(name, f"must be an integer, got {raw!r}") from None
