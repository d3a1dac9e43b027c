"""Versioned schemas of the telemetry events, as Arrow schemas (what the lake stores).

Every event has event_id, ts (unix ms), received_ms (when the service accepted it),
request_id, user_key (sha256 of the user id: the lake never holds raw ids), variant,
release and schema_version. Adding a nullable column is a compatible change; anything
else bumps SCHEMA_VERSION.
"""

from __future__ import annotations

import functools
import hashlib
import time
from collections.abc import Callable, Sequence
from typing import TypeVar

import pyarrow as pa

T = TypeVar("T")
R = TypeVar("R")

SCHEMA_VERSION = 1

_COMMON = [
    ("event_id", pa.string()), ("schema_version", pa.int16()), ("ts", pa.int64()),
    ("received_ms", pa.int64()), ("request_id", pa.string()), ("user_key", pa.string()),
    ("variant", pa.string()), ("release", pa.string()),
]


def _schema(*extra: tuple[str, pa.DataType]) -> pa.Schema:
    return pa.schema([*_COMMON, *extra])


SCHEMAS: dict[str, pa.Schema] = {
    # one per served feed/search/trending response
    "request": _schema(("route", pa.string()), ("status", pa.int16()), ("cache", pa.string()),
                       ("k", pa.int32()), ("returned", pa.int32()),
                       ("latency_ms", pa.float64()), ("fallback", pa.bool_()),
                       ("cohort", pa.string())),  # feeds: new, cold, light, medium, heavy
    # what was ranked for that request, in order; with exploration on, the ranker's own top
    # `window` it drew from, epsilon, whether this page was drawn (ranking/explore.py),
    # when the window was ranked (unix s: a cached window is older than the request); and
    # what a replay needs besides the release: the live engagement merged in (event codes
    # and items, newest first), which read of trending it ranked with (the `trending`
    # event of that id holds its time and live counts), the weights, and each signal's
    # contribution summed over the window (launch/replay.py)
    "ranking": _schema(("items", pa.list_(pa.string())), ("window", pa.list_(pa.string())),
                       ("epsilon", pa.float64()), ("explored", pa.bool_()),
                       ("ranked_at", pa.int64()), ("live_events", pa.list_(pa.int16())),
                       ("live_items", pa.list_(pa.string())), ("trending_id", pa.string()),
                       ("weights", pa.list_(pa.float64())), ("forgotten", pa.bool_()),
                       ("signals", pa.list_(pa.float64())),
                       ("teams", pa.list_(pa.int8()))),  # interleaved: 0 stable, 1 canary
    # with exploration on, each read of live trending by a release: its id, the time it
    # decayed to (unix s) and the live engagement counts, so a replay ranks with the
    # trending that was live
    "trending": _schema(("read_id", pa.string()), ("at", pa.int64()),
                        ("items", pa.list_(pa.string())),
                        ("counts", pa.list_(pa.float64()))),
    "impression": _schema(("item_id", pa.string()), ("position", pa.int32())),
    "click": _schema(("item_id", pa.string()), ("position", pa.int32())),
    # watch (value = watched fraction), like, share, skip
    "engagement": _schema(("kind", pa.string()), ("item_id", pa.string()),
                          ("value", pa.float64())),
    "error": _schema(("route", pa.string()), ("status", pa.int16()), ("code", pa.string()),
                     ("message", pa.string()), ("dropped", pa.int64())),
    # an admin or privacy action (api/audit.py): who, what, the answer; no raw user id
    "audit": _schema(("principal", pa.string()), ("scope", pa.string()),
                     ("method", pa.string()), ("route", pa.string()), ("status", pa.int16()),
                     ("target", pa.string())),
}
EVENT_TYPES = tuple(SCHEMAS)
# nullable columns added within a schema version: parts written before them lack them
ADDED: dict[str, frozenset[str]] = {"request": frozenset({"cohort"}),
                                    "ranking": frozenset({"window", "epsilon", "explored",
                                                          "ranked_at", "live_events",
                                                          "live_items", "trending_id",
                                                          "weights", "forgotten",
                                                          "signals", "teams"})}


KEY_SALT = "novarank"
KEY_CHARS = 20  # hex characters of sha256("<salt>:<user id>") kept


@functools.lru_cache(maxsize=65_536)  # a feed hit pays for a hash each time otherwise
def user_key(user_id: str, salt: str = KEY_SALT) -> str:
    """Stable pseudonymous key: joins across events work, the raw id never reaches the lake."""
    return hashlib.sha256(f"{salt}:{user_id}".encode()).hexdigest()[:KEY_CHARS]


CHUNK_ROWS = 256  # rows converted per call: ~0.5 ms holding the GIL at most


def in_chunks(items: Sequence[T], convert: Callable[[Sequence[T]], R]) -> list[R]:
    """`convert` over CHUNK_ROWS items at a time, yielding the GIL between chunks. An
    Arrow conversion holds the GIL for its whole call, so a writer's batch converted at
    once would make the event loop serving feeds wait for all of it."""
    parts = []
    for start in range(0, len(items), CHUNK_ROWS):
        if start:
            time.sleep(0)  # let a waiting thread take the GIL
        parts.append(convert(items[start:start + CHUNK_ROWS]))
    return parts


def table(kind: str, rows: list[dict]) -> pa.Table:
    """Rows -> an Arrow table of exactly the schema (missing fields become null), a chunk
    at a time (tests/test_telemetry.py checks the table is the same)."""
    schema = SCHEMAS[kind]
    if len(rows) <= CHUNK_ROWS:
        return pa.Table.from_pylist(rows, schema=schema)
    return pa.concat_tables(in_chunks(rows, lambda chunk: pa.Table.from_pylist(
        list(chunk), schema=schema)))
