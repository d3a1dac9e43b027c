"""Token-protected operations: toggles (kill switch, signals, variants), release info, and
this replica's view of the rollout."""

from __future__ import annotations

from fastapi import APIRouter

from novarank.api.auth import ADMIN
from novarank.api.common import JSON, Service, errors
from novarank.api.models import ReleaseInfo, RolloutView, TogglesIn, TogglesOut, WarmManifest

router = APIRouter(prefix="/v1/admin", tags=["admin"],
                   responses=errors(400, 401, 403, 422, 500), dependencies=[ADMIN])


@router.get("/toggles", response_model=TogglesOut, response_class=JSON)
def get_toggles(service: Service) -> JSON:
    return JSON(service.toggles.current().to_dict())


@router.put("/toggles", response_model=TogglesOut, response_class=JSON)
def put_toggles(service: Service, body: TogglesIn) -> JSON:
    """Change toggles; every replica applies them within `refresh_s` (1 s by default)."""
    return JSON(service.set_toggles(body.kill_switch, body.signals_off, body.variants_off))


@router.post("/cache/warm", response_model=WarmManifest, response_class=JSON)
def warm(service: Service, max_users: int | None = None) -> JSON:
    """Run the warm plan inside this replica (fills its L1 and the shared L2)."""
    return JSON(service.feeds.warm(max_users))


@router.get("/release", response_model=ReleaseInfo, response_class=JSON)
def release(service: Service) -> JSON:
    lock = service.releases.lock
    return JSON({"version": service.release, "code_version": lock.code_version,
                 "created_at": lock.created_at, "data_fingerprint": lock.data_fingerprint,
                 "ranker_digest": service.releases.digest, "files": len(lock.files),
                 "variants": sorted(service.rec.ranker.variants),
                 "split": service.audience.splitter.split})


@router.get("/rollout", response_model=RolloutView, response_class=JSON)
def rollout(service: Service) -> JSON:
    """What this replica serves (stable, canary and its share, drill fault) and the rollout
    document it follows; `novarank rollout` changes the document, not this endpoint."""
    return JSON(service.releases.rollout_view())
