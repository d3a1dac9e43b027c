"""Feed, trending, search and creator recommendations."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Header, Path, Query
from starlette.concurrency import run_in_threadpool

from novarank.api.common import JSON, Service, check_admin
from novarank.api.models import CreatorsResponse, FeedResponse, SearchResponse, TrendingResponse

router = APIRouter(prefix="/v1", tags=["feeds"])
UserId = Annotated[str, Path(min_length=1, max_length=256)]
K = Annotated[int, Query(description="items to return")]


@router.get("/users/{user_id}/feed", response_model=FeedResponse, response_class=JSON)
async def feed(service: Service, user_id: UserId, k: K = 10,
               cursor: Annotated[str | None, Query(max_length=200)] = None,
               x_variant_override: Annotated[str | None, Header()] = None,
               authorization: Annotated[str | None, Header()] = None) -> JSON:
    """Personalized feed, paged by an opaque cursor; each item carries per-signal reasons.

    An L1 hit is answered on the event loop (memory only, ~100 us); anything else, L2
    lookups and ranking included, runs in the thread pool so the loop never blocks."""
    if x_variant_override is not None:
        check_admin(service, authorization)  # QA override: admins only
    body = service.feed(user_id, k, cursor, x_variant_override, l1_only=True)
    if body is None:
        body = await run_in_threadpool(service.feed, user_id, k, cursor, x_variant_override)
    return JSON(body)


@router.get("/trending", response_model=TrendingResponse, response_class=JSON)
def trending(service: Service, window: str = "24h", k: K = 20) -> JSON:
    """Trending items by time-decayed engagement over 1h, 24h or 7d."""
    return JSON(service.trending(window, k))


@router.get("/search", response_model=SearchResponse, response_class=JSON)
def search(service: Service, q: Annotated[str, Query(max_length=200)],
           user_id: Annotated[str | None, Query(max_length=256)] = None, k: K = 10) -> JSON:
    """Full-text search over titles and tags, re-ranked for the user when one is given."""
    return JSON(service.search(q, user_id, k))


@router.get("/users/{user_id}/creators", response_model=CreatorsResponse, response_class=JSON)
def creators(service: Service, user_id: UserId, k: K = 10) -> JSON:
    """Creators the user engages with most (recency-weighted), then trending creators."""
    return JSON(service.creators(user_id, k))
