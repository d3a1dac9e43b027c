"""Per-user resources: experiment assignment, history, forgetting."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Header, Path, Query, Request

from novarank.api.auth import PRIVACY, READ, authorize
from novarank.api.common import JSON, Service, errors
from novarank.api.models import AssignmentResponse, ForgetResponse, HistoryResponse

router = APIRouter(prefix="/v1/users", tags=["users"], responses=errors(401, 403, 422, 500))
UserId = Annotated[str, Path(min_length=1, max_length=256)]


@router.get("/{user_id}/assignment", response_model=AssignmentResponse, response_class=JSON,
            dependencies=[READ])
def assignment(request: Request, service: Service, user_id: UserId,
               x_variant_override: Annotated[str | None, Header(
                   description="QA: force a variant (needs the admin scope)")] = None) -> JSON:
    """The experiment variant and release this user is routed to."""
    if x_variant_override is not None:
        authorize(request, "admin")
    return JSON(service.audience.assignment(user_id, x_variant_override))


@router.get("/{user_id}/history", response_model=HistoryResponse, response_class=JSON,
            dependencies=[PRIVACY])
def history(service: Service, user_id: UserId, limit: Annotated[int, Query()] = 50) -> JSON:
    """Recent live engagement and the positives the ranker uses for this user."""
    return JSON(service.discovery.history(user_id, limit))


@router.delete("/{user_id}", response_model=ForgetResponse, response_class=JSON,
               dependencies=[PRIVACY])
def forget(service: Service, user_id: UserId) -> JSON:
    """Forget a user: live history deleted, release history ignored, cached feeds dropped."""
    return JSON(service.engagement.forget(user_id))
