"""From scored candidates to a feed: filters, per-creator diversity and trending backfill."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class Selection:
    """Chosen positions into the candidate arrays, plus backfilled item ids."""

    ranked: np.ndarray  # positions into the candidate arrays, best first
    backfill: np.ndarray  # item ids appended from the backfill order


def select_top_k(
    items: np.ndarray,
    scores: np.ndarray,
    k: int,
    excluded: np.ndarray,
    creators: np.ndarray | None = None,
    creator_cap: int = 0,
    backfill_order: np.ndarray | None = None,
) -> Selection:
    """Best `k` candidates by score, never an excluded item, never a duplicate.

    `excluded` is a boolean mask over the whole catalog (seen, unavailable). With a
    creator cap, no creator (id >= 0) fills more than `creator_cap` slots while other
    items remain; capped items come back only if the feed would otherwise be short.
    When candidates run out, items from `backfill_order` (e.g. trending) fill the rest,
    so a feed has k items whenever the catalog has k eligible ones.
    """
    if k <= 0:
        return Selection(np.empty(0, np.int64), np.empty(0, np.int64))
    items = np.asarray(items)
    ok = ~excluded[items]
    # first occurrence only: a candidate listed twice is one item
    _, first = np.unique(items, return_index=True)
    unique = np.zeros(len(items), bool)
    unique[first] = True
    pos = np.flatnonzero(ok & unique)
    pos = pos[np.argsort(-scores[pos], kind="stable")]
    if creators is not None and creator_cap > 0:
        pos = _cap_creators(pos, creators[items[pos]], k, creator_cap)
    ranked = pos[:k]
    missing = k - len(ranked)
    backfill = np.empty(0, np.int64)
    if missing > 0 and backfill_order is not None:
        taken = np.zeros(len(excluded), bool)
        taken[items[ranked]] = True
        pool = backfill_order[~excluded[backfill_order] & ~taken[backfill_order]]
        backfill = pool[:missing].astype(np.int64)
    return Selection(ranked.astype(np.int64), backfill)


def _cap_creators(pos: np.ndarray, creator: np.ndarray, k: int, cap: int) -> np.ndarray:
    """Reorder so that at most `cap` items per creator come first; overflow goes last."""
    head: list[int] = []
    overflow: list[int] = []
    counts: dict[int, int] = {}
    for p, c in zip(pos.tolist(), creator.tolist(), strict=True):
        if c < 0:
            head.append(p)
        elif counts.get(c, 0) < cap:
            counts[c] = counts.get(c, 0) + 1
            head.append(p)
        else:
            overflow.append(p)
        if len(head) >= k:
            break
    rest = pos[len(head) + len(overflow):]
    return np.array(head + overflow + rest.tolist(), dtype=np.int64)
