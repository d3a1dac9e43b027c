"""What the feed path returns: typed values, not dicts. A page keeps its items as the JSON
they were rendered to once per snapshot, so HTTP answers a cache hit without building a
Python object per item; in-process callers decode them on demand."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import orjson


@dataclass(frozen=True, slots=True)
class FeedItem:
    item_id: str
    title: str
    score: float
    source: str  # "ranked", "backfill" or "fallback"
    reasons: dict[str, float]  # signal -> contribution (ranked), else {"trending": ...}


# never changed, yet not frozen: a frozen dataclass's init sets each field through
# object.__setattr__, and one is built on every cache hit
@dataclass(slots=True)
class FeedPage:
    request_id: str
    user_id: str
    variant: str
    release: str
    cold: bool
    fallback: bool  # the kill switch's trending fallback
    cache: str  # "l1", "l2", "miss" or "fallback"
    degraded: bool  # ranked here because the shared cache could not be asked
    items_json: bytes  # the page's items, a JSON array
    next_cursor: str | None

    @property
    def items(self) -> list[FeedItem]:
        return [FeedItem(**it) for it in orjson.loads(self.items_json)]

    def to_dict(self) -> dict[str, Any]:
        return orjson.loads(self.json())

    def json(self) -> bytes:
        """The HTTP body (FeedResponse): one orjson call, the items spliced in as they are."""
        return orjson.dumps({
            "request_id": self.request_id, "user_id": self.user_id, "variant": self.variant,
            "release": self.release, "cold": self.cold, "fallback": self.fallback,
            "cache": self.cache, "degraded": self.degraded,
            "items": orjson.Fragment(self.items_json), "next_cursor": self.next_cursor})


# ---- the other calls: orjson serialises these dataclasses as they are ----------------
@dataclass(frozen=True, slots=True)
class Assignment:
    user_id: str
    bucket: int
    assigned_variant: str
    variant: str  # what is served: the override, or "control" when the variant is off
    override: bool
    variant_off: bool
    release: str
    salt: str


@dataclass(frozen=True, slots=True)
class TrendingItem:
    item_id: str
    title: str
    score: float
    source: str  # "live" (counters) or "release"


@dataclass(frozen=True, slots=True)
class TrendingPage:
    request_id: str
    window: str
    release: str
    items: list[TrendingItem]


@dataclass(frozen=True, slots=True)
class SimilarItem:
    item_id: str
    title: str
    score: float
    reason: str


@dataclass(frozen=True, slots=True)
class SimilarPage:
    item_id: str
    items: list[SimilarItem]


@dataclass(frozen=True, slots=True)
class CreatorScore:
    creator_id: str
    score: float
    reason: str  # "affinity" or "trending"


@dataclass(frozen=True, slots=True)
class CreatorsPage:
    user_id: str
    cold: bool
    creators: list[CreatorScore]


@dataclass(frozen=True, slots=True)
class SearchItem:
    item_id: str
    title: str
    score: float
    text_score: float
    personal_score: float


@dataclass(frozen=True, slots=True)
class SearchPage:
    request_id: str
    q: str
    user_id: str | None
    items: list[SearchItem]


@dataclass(frozen=True, slots=True)
class ItemStats:
    trending_score: float
    quality: float
    live_events: dict[str, int]


@dataclass(frozen=True, slots=True)
class Item:
    item_id: str
    title: str
    creator_id: str | None
    tags: list[str]
    published_at: int | None
    available: bool
    in_release: bool
    stats: ItemStats
    catalog_seq: int | None = None  # set on the answer to an upsert


@dataclass(frozen=True, slots=True)
class HistoryEvent:
    item_id: str
    type: str
    value: float
    ts: int


@dataclass(frozen=True, slots=True)
class History:
    user_id: str
    forgotten: bool
    live: list[HistoryEvent]
    release_history_items: int
    recent_positive: list[str]


@dataclass(frozen=True, slots=True)
class Forgotten:
    user_id: str
    deleted_events: int
    forgotten: bool


@dataclass(frozen=True, slots=True)
class EventResult:
    index: int
    accepted: bool
    duplicate: bool = False  # accepted before (same event_id): acknowledged, counted once
    field: str | None = None
    error: str | None = None


@dataclass(frozen=True, slots=True)
class IngestResult:
    accepted: int
    rejected: int
    duplicates: int
    results: list[EventResult]


@dataclass(frozen=True, slots=True)
class WarmManifest:
    release: str
    users: int
    objects: int
    bytes: int
    seconds: float
    by_variant: dict[str, int]
    l2: str | None
