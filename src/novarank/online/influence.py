"""Bounded influence of one user on the live trending counters.

Trending is the signal clients write, so it is the one a single user (or a script with
one user id) could steer. Per replica and per hour, a user adds to an item at most the
weight of its strongest event (a share: 3), whatever they repeat, and at most
`per_user` in total across items. The ranker bounds the trending signal itself too
(ranking/recommender.py: TRENDING_Z_CAP, and TRENDING_MIN_SD, which keeps one user's
share from counting as more than one standard score), so even an admitted spike is bounded.
"""

from __future__ import annotations

import threading
from collections import OrderedDict

from novarank.data.events import PREFERENCE_WEIGHT

PER_ITEM = max(PREFERENCE_WEIGHT.values())  # one share's worth per user, item and window
PER_USER = 30.0  # per user and window, across items: ten shares, or thirty clicks
WINDOW_S = 3600


class InfluenceCap:
    def __init__(self, per_item: float = PER_ITEM, per_user: float = PER_USER,
                 window_s: int = WINDOW_S, max_entries: int = 500_000) -> None:
        self.per_item, self.per_user, self.window_s = per_item, per_user, window_s
        self.max_entries = max_entries
        self._pairs: OrderedDict[tuple[str, str], tuple[int, float]] = OrderedDict()
        self._users: OrderedDict[str, tuple[int, float]] = OrderedDict()
        self._lock = threading.Lock()

    def admit(self, user: str, item: str, weight: float, now: int) -> float:
        """The part of `weight` this user may still add to `item` in this window."""
        window = now // self.window_s
        with self._lock:
            w0, on_item = self._pairs.get((user, item), (window, 0.0))
            u0, on_user = self._users.get(user, (window, 0.0))
            on_item = on_item if w0 == window else 0.0
            on_user = on_user if u0 == window else 0.0
            granted = max(0.0, min(weight, self.per_item - on_item, self.per_user - on_user))
            self._put(self._pairs, (user, item), (window, on_item + granted), window)
            self._put(self._users, user, (window, on_user + granted), window)
        return granted

    def size(self) -> int:
        """Entries held (user-item pairs and users; each table at most max_entries)."""
        return len(self._pairs) + len(self._users)

    def _put(self, table: OrderedDict, key: object, value: tuple[int, float],
             window: int) -> None:
        table[key] = value
        table.move_to_end(key)
        # bounded: entries of past windows count for nothing and go first (the table is in
        # order of last use, so they are at the front), then the oldest beyond max_entries
        while table and (len(table) > self.max_entries
                         or next(iter(table.values()))[0] < window):
            table.popitem(last=False)
