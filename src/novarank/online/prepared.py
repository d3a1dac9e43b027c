"""Repeat cached feeds answered from what their last answer prepared.

A user asking again for the first page of a feed that L1 holds gets the same page: only
the request id and the latency change. So an L1 hit keeps its answer's body after the
request id, the page's telemetry fields and the L1 entry of the feed key it was read
through. The next request asks L1 for that key, and when the entry is the very same
object — not set again (re-ranked), deleted (an invalidation: engagement, a forget, a
replica's drop), expired or evicted — and the routing, the toggles and the catalog are
the ones the answer was made under, it is answered without computing the variant or the
key, reading or decoding the page, or serialising anything (FeedPath.repeat). What every
answer records is recorded as on the full path: the metrics, and the request and ranking
events with a fresh request id.

Entries are plain tuples of strings, bytes and numbers, which the garbage collector stops
tracking (as L1's own). Bounded in bytes (each entry counts its body, ids and key plus
`OVERHEAD` for the objects around them: tests/test_prepared.py measures it): at the bound
the table is emptied and refills on the next hits (one full-path hit per user), so no
order is kept per read.
"""

from __future__ import annotations

from novarank.online.releases import Routing
from novarank.online.results import FeedPage
from novarank.online.toggles import Toggles
from novarank.online.window import RenderedPage
from novarank.stores.cache import Entry, MemoryCache

HEAD = b'{"request_id":"'  # FeedPage.json() starts with the request id
OVERHEAD = 1000  # its tuples, strings, the table's slot; per id PER_ID beyond its text
PER_ID = 64

# (key, entry, k, on the canary, catalog version, variant, release, cohort, ids, teams,
#  the body after the request id)
Prepared = tuple[str, Entry, int, bool, int, str, str, str | None, tuple[str, ...],
                 tuple[int, ...] | None, bytes]


class PreparedFeeds:
    def __init__(self, l1: MemoryCache, max_bytes: int) -> None:
        self.l1, self.max_bytes = l1, max_bytes
        self.bytes = 0  # what the entries count (`size`)
        self._by_user: dict[str, Prepared] = {}
        self._routing: Routing | None = None  # what every entry was made under
        self._toggles: Toggles | None = None

    def __len__(self) -> int:
        return len(self._by_user)

    @staticmethod
    def size(user_id: str, found: Prepared) -> int:
        key, ids, tail = found[0], found[8], found[10]
        return (OVERHEAD + len(user_id) + len(key) + len(tail)
                + sum(len(i) + PER_ID for i in ids))

    def keep(self, user_id: str, k: int, key: str, entry: Entry, routing: Routing,
             toggles: Toggles, answer: FeedPage, page: RenderedPage) -> None:
        """Prepare the repeats of `answer`, an L1 hit of the first page read through
        `entry` of `key`, made under `routing` and `toggles`."""
        if self.max_bytes <= 0:
            return
        if routing is not self._routing or toggles is not self._toggles:
            self._clear()  # made under what no longer holds
            self._routing, self._toggles = routing, toggles
        body, head = answer.json(), HEAD + answer.request_id.encode()
        if not body.startswith(head):
            return
        found: Prepared = (
            key, entry, k, routing.canary is not None and answer.release == routing.canary.version,
            page.catalog, answer.variant, answer.release, page.cohort, tuple(page.ids),
            tuple(page.teams) if page.teams is not None else None, body[len(head):])
        self._drop(user_id)
        size = self.size(user_id, found)
        if self.bytes + size > self.max_bytes:
            self._clear()
        self._by_user[user_id] = found
        self.bytes += size

    def get(self, user_id: str, k: int, routing: Routing, toggles: Toggles) -> Prepared | None:
        """The user's prepared first page of `k` items while it still stands, else None."""
        if routing is not self._routing or toggles is not self._toggles:
            return None
        found = self._by_user.get(user_id)
        if found is None or found[2] != k:
            return None
        served = routing.canary if found[3] else routing.stable
        if (served is None or self.l1.entry(found[0]) is not found[1]
                or served.rec.catalog.version != found[4]):
            self._drop(user_id)
            return None
        return found

    def _drop(self, user_id: str) -> None:
        old = self._by_user.pop(user_id, None)
        if old is not None:
            self.bytes -= self.size(user_id, old)

    def _clear(self) -> None:
        self._by_user.clear()
        self.bytes = 0
