"""Response and request schemas: they document the API (OpenAPI) and validate bodies."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    StrictBool,
    StringConstraints,
)

from novarank.config import SIGNALS
from novarank.online.engagement import MAX_ID, MAX_POSITION, MAX_VALUE


def _json_integer(value: Any) -> Any:
    """A JSON integer (8512.0 is one); true and "5" are not, though Python would take them."""
    if isinstance(value, bool | str):
        raise ValueError("must be an integer")
    return value


MAX_UNIX_S = 4_102_444_800  # 2100-01-01: a timestamp past it is a mistake, not a date
UnixSeconds = Annotated[int, Field(ge=0, le=MAX_UNIX_S), BeforeValidator(_json_integer)]
# a tag: non-empty after trimming, no '|' (the catalog's separator). \x1c-\x1f are spelled
# out: Python's strip() removes them but neither JSON Schema's nor pydantic's \s matches them
Tag = Annotated[str, StringConstraints(min_length=1, max_length=100,
                                       pattern=r"^[^|]*[^|\s\x1c-\x1f][^|]*$")]


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
    degraded: bool = Field(description="true when ranked here because the shared cache "
                           "was unreachable (counted as a fallback, reason l2_down)")
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
    user_id: str = Field(min_length=1, max_length=256)
    item_id: str = Field(min_length=1, max_length=256)
    ts: int | None = Field(None, ge=1, le=MAX_UNIX_S,
                           description="unix seconds, at most 5 minutes ahead; default: now")
    value: float | None = Field(None, ge=-MAX_VALUE, le=MAX_VALUE, allow_inf_nan=False,
                                description="watched fraction (0..1) for watch events")
    request_id: str | None = Field(None, max_length=MAX_ID,
                                   description="the feed response this event refers to")
    position: int | None = Field(None, ge=0, le=MAX_POSITION, description="slot in that feed")
    event_id: str | None = Field(None, max_length=MAX_ID, description="idempotency key: a "
                                 "retried event with the same id is one event")


class EventResult(BaseModel):
    index: int
    accepted: bool
    duplicate: bool = Field(False, description="accepted before (same event_id): "
                            "acknowledged again, counted once")
    field: str | None = None
    error: str | None = None


class EventsResponse(BaseModel):
    accepted: int
    rejected: int
    duplicates: int = Field(0, description="accepted events that were already stored")
    results: list[EventResult]


class ItemUpsert(BaseModel):
    model_config = ConfigDict(extra="forbid")

    title: str = Field(min_length=1, max_length=500)
    creator_id: str = Field("", max_length=256)
    tags: list[Tag] = Field(default_factory=list, max_length=50)
    published_at: UnixSeconds | None = Field(None, description="unix seconds")
    duration: float | None = Field(None, ge=0, le=1e7, allow_inf_nan=False, strict=True,
                                   description="seconds")
    available: StrictBool = True


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
    model_config = ConfigDict(extra="forbid", strict=True)

    kill_switch: StrictBool | None = None
    signals_off: list[Literal[SIGNALS]] | None = None  # type: ignore[valid-type]
    variants_off: list[str] | None = None


class TogglesOut(BaseModel):
    kill_switch: bool
    signals_off: list[str]
    variants_off: list[str]


class Health(BaseModel):
    status: Literal["ok"]


class Readiness(BaseModel):
    ready: bool
    checks: dict[str, bool]
    threads: dict[str, bool] = Field(description="background loops by name: alive")
    degraded: bool = Field(description="the shared cache is down (serving from L1, ranking "
                           "locally) or the telemetry sink refuses writes (events wait in "
                           "the buffer): still ready")
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
    interleave: bool = Field(False, description="the canary's share is served pages merged "
                             "from both releases (rollout mode interleave)")
    fault: dict[str, Any] | None
    fault_refused: dict[str, Any] | None = Field(None, description="the document's drill "
                                                 "fault, ignored: drills are off here")
    loading: list[str]
    rollout: dict[str, Any] | None
    follows_rollout: bool
