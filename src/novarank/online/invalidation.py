"""A user's cached feeds: the keys they live under, dropping them on every replica, and the
listener that applies other replicas' drops to this one's L1.

A replica hears its own drops too. It already applied them, and by then its refresh-ahead
may have re-ranked the user into L1: applying the echo would throw that fresh feed away.
So each replica counts the drops it published per user and skips as many echoes. Skipping
another replica's drop of the same user in place of an echo is harmless: the echo still
arrives after it (pub/sub keeps publish order) and is applied then."""

from __future__ import annotations

import contextlib
import logging
import threading

from novarank.online.context import ServiceContext
from novarank.online.follower import ReleaseFollower
from novarank.online.releases import Served
from novarank.online.toggles import Toggles
from novarank.stores.cache import RedisCache

log = logging.getLogger("novarank.service")


def feed_key(variant: str, user_id: str, toggles: Toggles, served: Served) -> str:
    """A feed is cached per release (and its ranker digest), signals off, variant, user."""
    tog = ",".join(sorted(toggles.signals_off))
    return f"feed:{served.version}:{served.digest}:{tog}:{variant}:{user_id}"


class Invalidation:
    def __init__(self, ctx: ServiceContext, releases: ReleaseFollower) -> None:
        self.ctx, self.releases = ctx, releases
        self.channel = f"{ctx.settings.key_prefix}invalidate"
        self._echoes: dict[str, int] = {}  # user -> own drops published, not yet heard
        self._lock = threading.Lock()

    def keys(self, user_id: str) -> list[str]:
        toggles = self.ctx.toggles.current()
        return [feed_key(v, user_id, toggles, s) for s in self.releases.routing.loaded()
                for v in self.releases.rec.ranker.variants]

    def invalidate(self, user_id: str) -> None:
        """Drop the user's cached feeds here, in L2, and (via pub/sub) in every replica's L1.
        With Redis down only this replica's L1 is cleared; the others empty theirs when
        their listener reconnects."""
        cache = self.ctx.cache
        cache.delete(self.keys(user_id))
        l2 = cache.l2
        if isinstance(l2, RedisCache):
            def send() -> bool:
                l2.publish(self.channel, user_id)
                return True

            self._expect(user_id, 1)  # before publishing: the echo may beat the return
            if not cache.health.call("publish", send, False):
                self._expect(user_id, -1)

    def _expect(self, user_id: str, n: int) -> bool:
        """Count n more (or fewer) echoes of this user's drops; whether any were expected."""
        with self._lock:
            had = self._echoes.get(user_id, 0)
            if had + n > 0:
                self._echoes[user_id] = had + n
            else:
                self._echoes.pop(user_id, None)
            return had > 0

    def _echo(self, user_id: str) -> bool:
        """True (and one fewer expected) when this is the echo of a drop published here."""
        with self._lock:
            if user_id not in self._echoes:
                return False
        return self._expect(user_id, -1)

    def listen(self, l2: RedisCache, stop: threading.Event) -> None:
        """Drop other replicas' invalidated feeds from L1. Supervised: after a lost
        connection it resubscribes with backoff, and then empties L1, since invalidations
        sent while it was away are lost and an L1 entry could outlive its user's like."""
        l1 = self.ctx.cache.l1
        backoff, outage, pubsub = 0.5, False, None
        while not stop.is_set():
            try:
                pubsub = l2.subscribe(self.channel)
                with self._lock:  # drops sent before this subscription are never heard
                    self._echoes.clear()
                if outage:
                    l1.clear()
                    log.info("invalidation listener reconnected; L1 emptied (invalidations "
                             "sent meanwhile are lost)")
                outage, backoff = False, 0.5
                while not stop.is_set():
                    msg = pubsub.get_message(timeout=0.5)
                    if msg and msg.get("type") == "message":
                        user_id = msg["data"].decode()
                        if not self._echo(user_id):
                            l1.delete(self.keys(user_id))
                pubsub.close()
            except Exception as exc:  # the thread must outlive any Redis error
                if pubsub is not None:
                    with contextlib.suppress(Exception):
                        pubsub.close()
                if not outage:
                    log.warning("invalidation listener lost Redis (%s); retrying with backoff",
                                type(exc).__name__)
                outage = True
                self.ctx.metrics.of(self.ctx.metrics.thread_restarts, "nr-invalidate").inc()
                stop.wait(backoff)
                backoff = min(backoff * 2, 1.0)  # back within a second of Redis
