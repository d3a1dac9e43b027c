"""Catalog items: read with live stats, upsert, more-like-this."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path, Query, Request

from novarank.api.auth import CATALOG, READ
from novarank.api.common import JSON, Service, errors
from novarank.api.models import ItemOut, ItemUpsert, SimilarResponse
from novarank.api.ratelimit import spend
from novarank.stores.state import CatalogItem

router = APIRouter(prefix="/v1/items", tags=["items"], responses=errors(400, 401, 403, 422, 500))
ItemId = Annotated[str, Path(min_length=1, max_length=256, pattern=r"^[^|]+$")]


@router.get("/{item_id}", response_model=ItemOut, response_class=JSON, responses=errors(404),
            dependencies=[READ])
def get_item(service: Service, item_id: ItemId) -> JSON:
    """An item with its live engagement counts, trending score and quality."""
    return JSON(service.discovery.get_item(item_id))


@router.put("/{item_id}", response_model=ItemOut, response_class=JSON, dependencies=[CATALOG],
            responses=errors(429))
def put_item(request: Request, service: Service, item_id: ItemId, body: ItemUpsert) -> JSON:
    """Create or update an item; new uploads are eligible at once, without retraining."""
    spend(request, "catalog")
    # the Tag pattern already refused '|' and blank tags (api/models.py)
    item = CatalogItem(item_id=item_id, title=body.title, creator_id=body.creator_id,
                       tags="|".join(t.strip() for t in body.tags),
                       published_at=body.published_at, duration=body.duration,
                       available=body.available)
    return JSON(service.discovery.upsert_item(item))


@router.get("/{item_id}/similar", response_model=SimilarResponse, response_class=JSON,
            responses=errors(404), dependencies=[READ])
def similar(service: Service, item_id: ItemId, k: Annotated[int, Query()] = 10) -> JSON:
    """More like this: co-engagement neighbours, then embedding neighbours, then backfill."""
    return JSON(service.discovery.similar(item_id, k))
