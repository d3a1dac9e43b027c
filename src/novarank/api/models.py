"""Response and request schemas: they document the API (OpenAPI) and validate bodies."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field


class ErrorBody(BaseModel):
    field: str | None = Field(None, description="the argument that broke a rule")
    message: str
    code: str
    release: str | None = Field(None, description="the release the request was routed to, "
                                "when the failure was inside it")


class ErrorResponse(BaseModel):
    error: ErrorBody


class FeedItemOut(BaseModel):
    item_id: str
    title: str
    score: float
    source: Literal["ranked", "backfill", "fallback"]
    reasons: dict[str, float] = Field(description="per-signal contribution to the score")


class FeedResponse(BaseModel):
    request_id: str = Field(description="quote it in impression/click events")
    user_id: str
    variant: str
    release: str
    cold: bool
    fallback: bool = Field(description="true when served by the kill-switch fallback")
    cache: Literal["l1", "l2", "miss", "fallback"]
    items: list[FeedItemOut]
    next_cursor: str | None


class TrendingItem(BaseModel):
    item_id: str
    title: str
    score: float
    source: Literal["live", "release"]


class TrendingResponse(BaseModel):
    request_id: str
    window: str
    release: str
    items: list[TrendingItem]


class SimilarItem(BaseModel):
    item_id: str
    title: str
    score: float
    reason: str


class SimilarResponse(BaseModel):
    item_id: str
    items: list[SimilarItem]


class CreatorOut(BaseModel):
    creator_id: str
    score: float
    reason: Literal["affinity", "trending"]


class CreatorsResponse(BaseModel):
    user_id: str
    cold: bool
    creators: list[CreatorOut]


class SearchItem(BaseModel):
    item_id: str
    title: str
    score: float
    text_score: float
    personal_score: float


class SearchResponse(BaseModel):
    request_id: str
    q: str
    user_id: str | None
    items: list[SearchItem]


class EventIn(BaseModel):
    """One engagement event (documented shape; each is validated on its own)."""

    type: Literal["impression", "click", "watch", "like", "share", "skip"]
    user_id: str
    item_id: str
    ts: int | None = Field(None, description="unix seconds; default: now")
    value: float | None = Field(None, description="watched fraction for watch events")
    request_id: str | None = Field(None, description="the feed response this event refers to")


class EventResult(BaseModel):
    index: int
    accepted: bool
    field: str | None = None
    error: str | None = None


class EventsResponse(BaseModel):
    accepted: int
    rejected: int
    results: list[EventResult]


class ItemUpsert(BaseModel):
    model_config = ConfigDict(extra="forbid")

    title: str = Field(min_length=1, max_length=500)
    creator_id: str = Field("", max_length=256)
    tags: list[str] = Field(default_factory=list, max_length=50)
    published_at: int | None = Field(None, ge=0)
    duration: float | None = Field(None, ge=0)
    available: bool = True


class ItemStats(BaseModel):
    trending_score: float
    quality: float
    live_events: dict[str, int]


class ItemOut(BaseModel):
    item_id: str
    title: str
    creator_id: str | None
    tags: list[str]
    published_at: int | None
    available: bool
    in_release: bool
    stats: ItemStats
    catalog_seq: int | None = None


class AssignmentResponse(BaseModel):
    user_id: str
    bucket: int
    assigned_variant: str
    variant: str
    override: bool
    variant_off: bool
    release: str
    salt: str


class HistoryEvent(BaseModel):
    item_id: str
    type: str
    value: float
    ts: int


class HistoryResponse(BaseModel):
    user_id: str
    forgotten: bool
    live: list[HistoryEvent]
    release_history_items: int
    recent_positive: list[str]


class ForgetResponse(BaseModel):
    user_id: str
    deleted_events: int
    forgotten: bool


class TogglesIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    kill_switch: bool | None = None
    signals_off: list[str] | None = None
    variants_off: list[str] | None = None


class TogglesOut(BaseModel):
    kill_switch: bool
    signals_off: list[str]
    variants_off: list[str]


class Readiness(BaseModel):
    ready: bool
    checks: dict[str, bool]
    release: str


class WarmManifest(BaseModel):
    release: str
    users: int
    objects: int
    bytes: int
    seconds: float
    by_variant: dict[str, int]
    l2: str | None


class ReleaseInfo(BaseModel):
    version: str
    code_version: str | None
    created_at: str | None
    data_fingerprint: str | None
    ranker_digest: str
    files: int
    variants: list[str]
    split: dict[str, float]


class RolloutView(BaseModel):
    replica: str
    configured: str
    stable: str
    canary: str | None
    canary_percent: float
    fault: dict[str, Any] | None
    loading: list[str]
    rollout: dict[str, Any] | None
    follows_rollout: bool
