"""Per-user resources: experiment assignment, history, forgetting."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Header, Path, Query

from novarank.api.common import JSON, Service, check_admin, errors
from novarank.api.models import AssignmentResponse, ForgetResponse, HistoryResponse

router = APIRouter(prefix="/v1/users", tags=["users"], responses=errors(422, 500))
UserId = Annotated[str, Path(min_length=1, max_length=256)]


@router.get("/{user_id}/assignment", response_model=AssignmentResponse, response_class=JSON,
            responses=errors(401, 403))
def assignment(service: Service, user_id: UserId,
               x_variant_override: Annotated[str | None, Header()] = None,
               authorization: Annotated[str | None, Header()] = None) -> JSON:
    """The experiment variant and release this user is routed to."""
    if x_variant_override is not None:
        check_admin(service, authorization)
    return JSON(service.assignment(user_id, x_variant_override))


@router.get("/{user_id}/history", response_model=HistoryResponse, response_class=JSON)
def history(service: Service, user_id: UserId, limit: Annotated[int, Query()] = 50) -> JSON:
    """Recent live engagement and the positives the ranker uses for this user."""
    return JSON(service.history(user_id, limit))


@router.delete("/{user_id}", response_model=ForgetResponse, response_class=JSON)
def forget(service: Service, user_id: UserId) -> JSON:
    """Forget a user: live history deleted, release history ignored, cached feeds dropped."""
    return JSON(service.forget(user_id))
