"""Compact binary form of a ranked feed window, as stored in the caches.

A 200-item window with five reasons per item is ~6 KB this way instead of ~37 KB of
JSON, so the same L1 budget holds six times as many users. Titles and ids are rendered
from the live catalog only for the page actually returned.
"""

from __future__ import annotations

import base64
import struct
from dataclasses import dataclass
from typing import Any

import numpy as np
import orjson

from novarank.config import SIGNALS
from novarank.errors import NotFoundError
from novarank.evaluation.metrics import cohort_of
from novarank.ids import new_id
from novarank.ranking.catalog import CatalogView
from novarank.ranking.interleave import team_draft
from novarank.ranking.recommender import Recommender, UserProfile

SOURCES = ("ranked", "backfill", "fallback")
_HEAD = struct.Struct("<II")  # header length, item count


@dataclass(frozen=True)
class Window:
    meta: dict[str, Any]  # snapshot, user_id, variant, cold
    items: np.ndarray  # int32 catalog indices
    scores: np.ndarray  # float32
    reasons: np.ndarray  # float32 (n, 5)
    sources: np.ndarray  # uint8 index into SOURCES

    def encode(self) -> bytes:
        head = orjson.dumps(self.meta)
        n = len(self.items)
        return b"".join([_HEAD.pack(len(head), n), head,
                         self.items.astype("<i4").tobytes(), self.scores.astype("<f4").tobytes(),
                         self.reasons.astype("<f4").tobytes(), self.sources.astype("u1").tobytes()])

    def explored(self, first: np.ndarray) -> Window:
        """A new snapshot showing the rows `first` first, the rest after in their order (so
        the pages of an explored feed still never repeat an item)."""
        rest = np.ones(len(self.items), bool)
        rest[first] = False
        order = np.concatenate([first, np.flatnonzero(rest)])
        return Window({**self.meta, "snapshot": new_id()[:16]}, self.items[order],
                      self.scores[order], self.reasons[order], self.sources[order])

    @classmethod
    def decode(cls, raw: bytes) -> Window:
        hlen, n = _HEAD.unpack_from(raw)
        off = _HEAD.size
        meta = orjson.loads(raw[off: off + hlen])
        off += hlen
        items = np.frombuffer(raw, "<i4", n, off)
        off += 4 * n
        scores = np.frombuffer(raw, "<f4", n, off)
        off += 4 * n
        reasons = np.frombuffer(raw, "<f4", 5 * n, off).reshape(n, 5)
        off += 20 * n
        sources = np.frombuffer(raw, "u1", n, off)
        return cls(meta, items, scores, reasons, sources)


def encode_cursor(snapshot: str, offset: int) -> str:
    return base64.urlsafe_b64encode(f"{snapshot}:{offset}".encode()).decode().rstrip("=")


def decode_cursor(cursor: str) -> tuple[str, int]:
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode()
        snapshot, offset = raw.split(":")
        return snapshot, int(offset)
    except (ValueError, UnicodeDecodeError):
        raise NotFoundError("cursor", "not a cursor returned by this API: request the first "
                            "page again") from None


def cohort(p: UserProfile) -> str:
    """The user's cohort for the canary's per-cohort guardrails: "new" without any history
    (release or live), else by how much they have seen (evaluation/metrics.py)."""
    return "new" if p.cold and not len(p.seen) else cohort_of(len(p.seen))


def rank_window(rec: Recommender, release: str, user_id: str, variant: str, p: UserProfile,
                weights: np.ndarray, size: int, now: int, inputs: bool = False) -> Window:
    """Rank `size` items for the user (ranked, then backfill) as a new snapshot. With
    `inputs`, the snapshot also keeps what a replay needs besides the release: the live
    engagement merged in, when trending was read, the weights (toggles applied)."""
    r = rec.rank(p, size, weights, now)
    n_bf = len(r.backfill)
    meta = {"snapshot": new_id()[:16], "user_id": user_id, "variant": variant,
            "cold": p.cold, "cohort": cohort(p), "release": release, "ranked_at": now}
    if inputs:
        meta["inputs"] = {"live": [[e.event, e.item_id] for e in p.live],
                          "trending": p.catalog.trending_id,
                          "weights": [float(w) for w in weights], "forgotten": p.forgotten}
    return Window(
        meta=meta,
        items=np.concatenate([r.items, r.backfill]).astype(np.int32),
        scores=np.concatenate([r.scores, np.zeros(n_bf, np.float32)]),
        reasons=np.vstack([r.contributions.reshape(-1, len(SIGNALS)),
                           np.zeros((n_bf, len(SIGNALS)), np.float32)]),
        sources=np.array([0] * len(r.items) + [1] * n_bf, np.uint8))


def interleave(stable: Window, stable_cat: CatalogView, canary: Window,
               canary_cat: CatalogView, rng: np.random.Generator) -> Window:
    """The two releases' windows merged by team draft into one snapshot of the canary's
    catalog, each row keeping the score and reasons of the release that placed it and its
    team in `meta["teams"]` (0 stable, 1 canary), so every page of it credits its clicks.
    Items are matched by id (the catalogs can differ): a stable item the canary's catalog
    lacks cannot be shown and is skipped."""
    theirs = [str(x) for x in stable_cat.item_ids[stable.items].tolist()]
    rows = {i: r for r, i in enumerate(theirs) if i in canary_cat.index}
    ours = {str(i): r for r, i in enumerate(canary_cat.item_ids[canary.items].tolist())}
    size = max(len(stable.items), len(canary.items))
    merged = team_draft(list(rows), list(ours), size, rng)
    pick = [(rows if t == 0 else ours)[i] for i, t in zip(merged.items, merged.teams,
                                                            strict=True)]
    src = np.asarray(merged.teams, bool)

    def take(a: np.ndarray, b: np.ndarray) -> np.ndarray:
        both = np.zeros((len(pick), *a.shape[1:]), a.dtype)
        idx = np.asarray(pick, np.intp)
        both[~src], both[src] = a[idx[~src]], b[idx[src]]
        return both

    items = np.asarray([canary_cat.index[i] for i in merged.items], np.int32)
    meta = {**canary.meta, "snapshot": new_id()[:16], "teams": merged.teams,
            "interleaved": [stable.meta["release"], canary.meta["release"]]}
    meta.pop("inputs", None)  # a replay of one release cannot reproduce a merged page
    return Window(meta, items, take(stable.scores, canary.scores),
                  take(stable.reasons, canary.reasons), take(stable.sources, canary.sources))


def render(w: Window, offset: int, k: int, cat: CatalogView) -> list[dict[str, Any]]:
    """The page's items from the catalog; rounding is vectorised (this is the hit path)."""
    end = min(offset + k, len(w.items))
    idx = w.items[offset:end]
    scores = np.round(w.scores[offset:end].astype(np.float64), 5).tolist()
    reasons = np.round(w.reasons[offset:end].astype(np.float64), 5).tolist()
    trend = np.round(np.log1p(cat.trending[idx].astype(np.float64)), 5).tolist()
    out = []
    for n, (i, src) in enumerate(zip(idx.tolist(), w.sources[offset:end].tolist(),
                                     strict=True)):
        source = SOURCES[src]
        out.append({"item_id": cat.item_ids[i], "title": cat.titles[i], "score": scores[n],
                    "source": source,
                    "reasons": dict(zip(SIGNALS, reasons[n], strict=True))
                    if source == "ranked" else {"trending": trend[n]}})
    return out


_LEN = struct.Struct("<I")


# never changed, yet not frozen: a frozen dataclass's init sets each field through
# object.__setattr__, and one is built on every cache hit
@dataclass(slots=True)
class RenderedPage:
    """One page of a snapshot as served: its items rendered to JSON and what the answer
    and its telemetry need besides, kept in L1 so a hit decodes no window at all. Valid
    while the catalog is at `catalog` (an upsert may have changed a title)."""

    snapshot: str
    user_id: str  # the window's owner (or the shared cold window)
    variant: str
    cold: bool
    cohort: str | None  # the window owner's (None: a window from before cohorts)
    release: str
    catalog: int  # CatalogView.version it was rendered from
    next_cursor: str | None  # the next page's cursor; None at the window's end
    ids: list[str]
    items_json: bytes
    teams: list[int] | None = None  # interleaved: each slot's release, 0 stable, 1 canary

    @classmethod
    def of(cls, w: Window, offset: int, k: int, cat: CatalogView, release: str
           ) -> RenderedPage:
        m = w.meta
        end = min(offset + k, len(w.items))
        return cls(m["snapshot"], m["user_id"], m["variant"], m["cold"], m.get("cohort"),
                   release, cat.version,
                   encode_cursor(m["snapshot"], offset + k) if offset + k < len(w.items)
                   else None,
                   cat.item_ids[w.items[offset:end]].tolist(),
                   orjson.dumps(render(w, offset, k, cat)),
                   m["teams"][offset:end] if "teams" in m else None)

    def encode(self) -> bytes:
        head = orjson.dumps([self.snapshot, self.user_id, self.variant, self.cold,
                             self.cohort, self.release, self.catalog, self.next_cursor,
                             self.ids, self.teams])
        return b"".join([_LEN.pack(len(head)), head, self.items_json])

    @classmethod
    def decode(cls, raw: bytes) -> RenderedPage:
        (n,) = _LEN.unpack_from(raw)
        snap, user, variant, cold, group, release, catalog, cursor, ids, teams = (
            orjson.loads(raw[_LEN.size:_LEN.size + n]))
        return cls(snap, user, variant, cold, group, release, catalog, cursor, ids,
                   raw[_LEN.size + n:], teams)
