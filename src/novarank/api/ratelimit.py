"""Per-key budgets for the work one client can make a replica do: catalog upserts, events,
and feeds that miss L1 (ranking or an L2 read in the thread pool).

A token bucket per (key, kind) on each replica: `rate` tokens a second, bursts up to two
seconds' worth. A key's entry in the key file may set its own `limits` (a frontend that
asks feeds for every user needs a larger miss budget than a batch job); without a key
(development mode) the budget is per client address. Over budget is 429 with
Retry-After, and nothing of the request was done.
"""

from __future__ import annotations

import math
import threading
import time

from starlette.requests import Request

from novarank.errors import RateLimited
from novarank.keys import Principal

BURST_S = 2.0


class Buckets:
    def __init__(self, rates: dict[str, float], max_clients: int = 100_000) -> None:
        self.rates = rates
        self.max_clients = max_clients
        self._lock = threading.Lock()
        self._tokens: dict[tuple[str, str], tuple[float, float]] = {}  # -> (tokens, at)

    def size(self) -> int:
        """(who, kind) budgets held (at most max_clients)."""
        return len(self._tokens)

    def take(self, who: str, kind: str, cost: float = 1.0,
             rate: float | None = None) -> None:
        """Spend `cost` of `who`'s `kind` budget, or raise RateLimited (nothing spent)."""
        rate = self.rate(kind, rate)
        if rate <= 0:  # 0 = unlimited
            return
        cap = max(rate * BURST_S, cost)
        now = time.monotonic()
        with self._lock:
            tokens, at = self._tokens.get((who, kind), (cap, now))
            tokens = min(cap, tokens + (now - at) * rate)
            if tokens < cost:
                self._tokens[(who, kind)] = (tokens, now)
                wait = (cost - tokens) / rate
                raise RateLimited(kind, wait, refusal(kind, rate, who, wait))
            if len(self._tokens) >= self.max_clients:  # bounded: a flood of addresses
                self._tokens.clear()
            self._tokens[(who, kind)] = (tokens - cost, now)

    def wait(self, who: str, kind: str, rate: float | None = None) -> float:
        """Seconds until `who` has one `kind` token again (0: it has one); spends nothing."""
        rate = self.rate(kind, rate)
        if rate <= 0:
            return 0.0
        with self._lock:
            held = self._tokens.get((who, kind))
        if held is None:
            return 0.0
        tokens = min(max(rate * BURST_S, 1.0), held[0] + (time.monotonic() - held[1]) * rate)
        return max(0.0, (1.0 - tokens) / rate)

    def rate(self, kind: str, own: float | None = None) -> float:
        """The rate that applies: a key's own limit, else the replica's (0 = unlimited)."""
        return self.rates.get(kind, 0.0) if own is None else own


def refusal(kind: str, rate: float, who: str, wait: float) -> str:
    return (f"rate limit: {kind} budget of {rate:g}/s for {who} spent; "
            f"retry in {max(1, math.ceil(wait))} s")


def caller(principal: Principal | None, host: str | None, kind: str) -> tuple[str, float | None]:
    """Who pays for `kind` and at what rate: the key at its own limit if it sets one, or
    the client address at the replica's (development mode)."""
    if principal is not None:
        return f"key:{principal.key_id}", principal.limits.get(kind)
    return f"addr:{host or '?'}", None


def spend(request: Request, kind: str, cost: float = 1.0) -> None:
    """Charge the caller (its key, or its address in development mode) for `kind`."""
    who, rate = caller(getattr(request.state, "principal", None),
                       request.client.host if request.client else None, kind)
    request.app.state.buckets.take(who, kind, cost, rate)
