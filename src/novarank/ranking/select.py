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
    if len(items) > 1 and not (items[1:] > items[:-1]).all():  # sorted distinct: no repeats
        # first occurrence only: a candidate listed twice is one item
        _, first = np.unique(items, return_index=True)
        unique = np.zeros(len(items), bool)
        unique[first] = True
        ok &= unique
    eligible = np.flatnonzero(ok)
    if creators is not None and creator_cap > 0:
        best = _best_first(eligible, scores, 2 * k)
        pos, heads = _cap_creators(best, creators[items[best]], k, creator_cap)
        if heads < k and len(best) < len(eligible):
            # the creator cap reached past the best 2k: rank them all
            every = _best_first(eligible, scores, len(eligible))
            pos, _ = _cap_creators(every, creators[items[every]], k, creator_cap)
    else:
        pos = _best_first(eligible, scores, k)
    ranked = pos[:k]
    missing = k - len(ranked)
    backfill = np.empty(0, np.int64)
    if missing > 0 and backfill_order is not None:
        taken = np.zeros(len(excluded), bool)
        taken[items[ranked]] = True
        pool = backfill_order[~excluded[backfill_order] & ~taken[backfill_order]]
        backfill = pool[:missing].astype(np.int64)
    return Selection(ranked.astype(np.int64), backfill)


def _best_first(pos: np.ndarray, scores: np.ndarray, m: int) -> np.ndarray:
    """The positions of the best `m` scores (all of them tied with the m-th too), best
    first, ties in position order: the head of a stable sort of all of `pos`, without
    sorting the rest (a 200-item window out of thousands of candidates)."""
    s = scores[pos]
    if m < len(pos):
        keep = s >= np.partition(s, len(s) - m)[len(s) - m]
        pos, s = pos[keep], s[keep]
    return pos[np.argsort(-s, kind="stable")]


def _cap_creators(pos: np.ndarray, creator: np.ndarray, k: int, cap: int
                  ) -> tuple[np.ndarray, int]:
    """Reorder so that at most `cap` items per creator come first; overflow goes last.
    Returns the order and how many items the cap let into the head (up to k).

    Walking `pos` in order until `k` items are in the head: an item joins the head when
    it has no creator (id < 0) or fewer than `cap` earlier items of its creator; the
    others overflow. Positions after the k-th head item keep their order at the end."""
    if not (creator >= 0).any():
        return pos, min(len(pos), k)
    by_creator = np.argsort(creator, kind="stable")
    sorted_c = creator[by_creator]
    group_start = np.flatnonzero(np.r_[True, sorted_c[1:] != sorted_c[:-1]])
    earlier = np.empty(len(pos), np.int64)  # same-creator items before this one
    earlier[by_creator] = np.arange(len(pos)) - np.repeat(group_start,
                                                          np.diff(np.r_[group_start, len(pos)]))
    head = (creator < 0) | (earlier < cap)
    nth = np.flatnonzero(head)
    cut = int(nth[k - 1]) + 1 if len(nth) >= k else len(pos)
    seen = pos[:cut]
    order = np.concatenate([seen[head[:cut]], seen[~head[:cut]], pos[cut:]])
    return order.astype(np.int64), min(len(nth), k)
