"""An answered request as the request path hands it to telemetry: one tuple, turned into
its `request` and `ranking` events by the writer, a column at a time.

Every served feed, search and trending answer becomes two events. As one tuple the
request path only appends (no dict per event), and the writer builds each column once for
both tables (the ids, times, variant and release they share), makes the event ids in one
call, and fills the columns a batch does not use with nulls: bench_telemetry.py measures
this against the same records converted as dict rows.
`rows()` is the same events as dicts, for a sink that takes rows (the Redis stream), and
for a batch the columns cannot hold (then the lake's row path finds the bad row).
"""

from __future__ import annotations

import binascii
import os
from collections.abc import Sequence
from typing import Any, NamedTuple

import numpy as np
import pyarrow as pa

from novarank.telemetry.schemas import SCHEMA_VERSION, SCHEMAS, in_chunks

# the ranking columns an explored first page fills (online/requests.py Explored.fields)
EXPLORE_FIELDS = ("window", "epsilon", "explored", "ranked_at", "live_events", "live_items",
                  "trending_id", "weights", "forgotten", "signals")


class Answered(NamedTuple):
    ts: int  # when it was answered (ms): the events' ts and received_ms
    request_id: str
    user_key: str
    variant: str
    release: str
    route: str
    cache: str
    k: int
    returned: int
    latency_ms: float
    cohort: str | None
    items: Sequence[str]  # a list, or a prepared feed's tuple (online/prepared.py)
    teams: Sequence[int] | None
    explore: dict[str, Any] | None  # Explored.fields(), with exploration on


def event_ids(n: int) -> pa.Array:
    """n random 128-bit ids as 32 hex characters, made as one buffer (no string per id)."""
    data = binascii.hexlify(os.urandom(16 * n))
    offsets = np.arange(0, 32 * n + 1, 32, dtype=np.int32)
    return pa.StringArray.from_buffers(n, pa.py_buffer(offsets), pa.py_buffer(data))


def tables(records: Sequence[Answered]) -> dict[str, pa.Table]:
    """The `request` and `ranking` tables of the records, exactly their schemas, built a
    chunk at a time (schemas.in_chunks). Raises what pyarrow raises on a value a column
    cannot hold."""
    parts = in_chunks(records, _tables)
    if len(parts) == 1:
        return parts[0]
    return {kind: pa.concat_tables([part[kind] for part in parts]) for kind in parts[0]}


def _tables(records: Sequence[Answered]) -> dict[str, pa.Table]:
    n = len(records)
    cols = list(zip(*records, strict=True))
    ts = pa.array(cols[0], pa.int64())
    shared = [pa.repeat(pa.scalar(SCHEMA_VERSION, pa.int16()), n), ts, ts,
              pa.array(cols[1], pa.string()), pa.array(cols[2], pa.string()),
              pa.array(cols[3], pa.string()), pa.array(cols[4], pa.string())]
    cache = pa.array(cols[6], pa.string())
    fallback = pa.array([c == "fallback" for c in cols[6]], pa.bool_())
    req = pa.Table.from_arrays([event_ids(n), *shared, pa.array(cols[5], pa.string()),
                                pa.repeat(pa.scalar(200, pa.int16()), n), cache,
                                pa.array(cols[7], pa.int32()), pa.array(cols[8], pa.int32()),
                                pa.array(cols[9], pa.float64()), fallback,
                                pa.array(cols[10], pa.string())], schema=SCHEMAS["request"])
    ranking = SCHEMAS["ranking"]
    explores, nobody = cols[13], (None,) * n
    explored = explores != nobody  # else (exploration off) every explore column is null
    own = {"items": cols[11], "teams": cols[12],
           **{name: [e.get(name) if e else None for e in explores] if explored else nobody
              for name in EXPLORE_FIELDS}}

    def column(name: str) -> pa.Array:
        values, kind = own[name], ranking.field(name).type
        return pa.nulls(n, kind) if values.count(None) == n else pa.array(values, kind)

    rank = pa.Table.from_arrays([event_ids(n), *shared,
                                 *(column(name) for name in ranking.names[8:])], schema=ranking)
    return {"request": req, "ranking": rank}


def rows(records: Sequence[Answered]) -> dict[str, list[dict[str, Any]]]:
    """The same events as dict rows (event ids left to the emitter)."""
    req, rank = [], []
    for r in records:
        common = {"request_id": r.request_id, "user_key": r.user_key, "variant": r.variant,
                  "release": r.release, "ts": r.ts, "received_ms": r.ts,
                  "schema_version": SCHEMA_VERSION}
        req.append({**common, "route": r.route, "status": 200, "cache": r.cache, "k": r.k,
                    "returned": r.returned, "latency_ms": r.latency_ms,
                    "fallback": r.cache == "fallback", "cohort": r.cohort})
        rank.append({**common, "items": r.items, "teams": r.teams, **(r.explore or {})})
    return {"request": req, "ranking": rank}
