"""Feed, trending, search and creator recommendations."""

from __future__ import annotations

import re
from functools import partial
from typing import Annotated, Literal

from fastapi import APIRouter, Path, Query, Request, Response
from starlette.concurrency import run_in_threadpool

from novarank.api.auth import READ, SECURITY, authorize
from novarank.api.common import JSON, Service, errors, int_param
from novarank.api.models import CreatorsResponse, FeedResponse, SearchResponse, TrendingResponse
from novarank.api.ratelimit import spend
from novarank.errors import InputError
from novarank.online.results import FeedPage
from novarank.online.service import RankingService

router = APIRouter(prefix="/v1", tags=["feeds"], responses=errors(401, 403, 422, 500))
UserId = Annotated[str, Path(min_length=1, max_length=256)]
K = Annotated[int, Query(description="items to return")]


CURSOR = re.compile(r"^[A-Za-z0-9_-]{1,200}$")  # an opaque next_cursor: well-formed or 422
FAILED = "novarank.feed_failed"  # scope key: the fast path's miss failed with this error
FEED_PARAMS = [
    {"name": "k", "in": "query", "required": False,
     "description": "items per page (1..feed_window)",
     "schema": {"type": "integer", "default": 10}},
    {"name": "cursor", "in": "query", "required": False,
     "description": "next_cursor of the previous page",
     "schema": {"type": "string", "pattern": CURSOR.pattern}},
    {"name": "X-Variant-Override", "in": "header", "required": False,
     "description": "QA: force a variant (needs the admin scope)",
     "schema": {"type": "string"}},
    {"name": "Cache-Control", "in": "header", "required": False,
     "description": "no-cache: re-rank now instead of reading the cache (admin scope)",
     "schema": {"type": "string"}},
]


@router.get("/users/{user_id}/feed", response_model=FeedResponse, response_class=JSON,
            responses=errors(404, 429),
            openapi_extra={"parameters": FEED_PARAMS, "security": SECURITY})
async def feed(request: Request, user_id: str) -> Response:
    """Personalized feed, paged by an opaque cursor; each item carries per-signal reasons.

    The hot path: parameters are read by hand (FastAPI's per-parameter machinery costs
    more than the cache hit itself). An L1 hit is answered on the event loop (memory
    only); anything else, L2 lookups and ranking included, runs in the thread pool."""
    authorize(request, "read")
    service: RankingService = request.app.state.service
    if not 1 <= len(user_id) <= 256:
        raise InputError("user_id", "must be 1 to 256 characters")
    request.state.release = service.release_for(user_id)  # errors name the routed release
    query, headers = request.query_params, request.headers
    k = int_param(query.get("k"), "k", 10)
    cursor = query.get("cursor")
    if cursor is not None and not CURSOR.fullmatch(cursor):
        raise InputError("cursor", "must be a next_cursor of this API (base64url, at most 200 "
                         "characters)")
    x_variant_override = headers.get("x-variant-override")
    refresh = "no-cache" in headers.get("cache-control", "")
    if x_variant_override is not None or refresh:
        authorize(request, "admin")  # QA and probes: admins only
    failed = request.scope.pop(FAILED, None)
    if failed is not None:  # ranked on the fast path (api/fastpath.py), failed there
        raise failed
    page = None if refresh else service.feeds.from_l1(user_id, k, cursor, x_variant_override)
    if not isinstance(page, FeedPage):
        if page is None:  # ranking (or an L2 read) costs the key's miss budget
            spend(request, "miss")  # (an explored draw to store, a Drawn, does not)
        page = await run_in_threadpool(partial(service.feeds.feed, refresh=refresh,
                                               drawn=page), user_id, k, cursor,
                                       x_variant_override)
    return Response(page.json(), media_type="application/json")


@router.get("/trending", response_model=TrendingResponse, response_class=JSON,
            dependencies=[READ])
def trending(service: Service, window: Literal["1h", "24h", "7d"] = "24h", k: K = 20) -> JSON:
    """Trending items by time-decayed engagement over 1h, 24h or 7d."""
    return JSON(service.discovery.trending(window, k))


@router.get("/search", response_model=SearchResponse, response_class=JSON,
            dependencies=[READ])
def search(service: Service,
           q: Annotated[str, Query(min_length=1, max_length=200, pattern=r"\S")],
           user_id: Annotated[str | None, Query(min_length=1, max_length=256)] = None,
           k: K = 10) -> JSON:
    """Full-text search over titles and tags, re-ranked for the user when one is given."""
    return JSON(service.discovery.search(q, user_id, k))


@router.get("/users/{user_id}/creators", response_model=CreatorsResponse, response_class=JSON,
            dependencies=[READ])
def creators(service: Service, user_id: UserId, k: K = 10) -> JSON:
    """Creators the user engages with most (recency-weighted), then trending creators."""
    return JSON(service.discovery.creators(user_id, k))
