"""The lake's clicks and engagement as training interactions: serving's feedback closes the
loop back into the next release.

The lake holds pseudonymous user keys, never raw ids. A user the base data knows is
recognised by their key and trained as themselves; a key no base user has stays a key
(its events still teach the item-side artifacts: neighbours, item factors, popularity,
quality). Only readable parts count (analytics/lake.py), each event once (first receipt).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from novarank.analytics.lake import Scan, scan
from novarank.data.dataset import Dataset, item_table
from novarank.data.events import Event
from novarank.telemetry.schemas import user_key

KINDS = ("click", "engagement")
COLUMNS = ("event_id", "received_ms", "ts", "user_key", "item_id")


def lake_scans(lake: str | Path, since: str | None = None) -> list[Scan]:
    """One scan per day present in the lake's click or engagement partitions (from
    `since`, a YYYY-MM-DD, on)."""
    root = Path(lake)
    days = sorted({p.name.removeprefix("event_date=") for kind in KINDS
                   for p in (root / "events" / kind).glob("event_date=*")})
    return [scan(root, day) for day in days if since is None or day >= since]


def event_code(kind: str) -> int:
    """A lake event kind (click, watch, like, share, skip) as its Event code."""
    return int(Event.parse(kind))


def read_feedback(lake: str | Path, since: str | None = None) -> pd.DataFrame:
    """user_key, item_id, event (code), value, ts (unix s): one row per event_id."""
    parts: list[pa.Table] = []
    for found in lake_scans(lake, since):
        for path in found.files.get("click", []):
            t = pq.read_table(path, columns=list(COLUMNS))
            parts.append(t.append_column("kind", pa.array(["click"] * t.num_rows, pa.string()))
                         .append_column("value", pa.array(np.ones(t.num_rows), pa.float64())))
        for path in found.files.get("engagement", []):
            parts.append(pq.read_table(path, columns=[*COLUMNS, "kind", "value"]))
    if not parts:
        return pd.DataFrame({"user_key": pd.Series([], dtype=str),
                             "item_id": pd.Series([], dtype=str),
                             "event": pd.Series([], dtype=np.int8),
                             "value": pd.Series([], dtype=np.float32),
                             "ts": pd.Series([], dtype=np.int64)})
    df = pa.concat_tables(parts, promote_options="default").to_pandas()
    df = (df.sort_values(["event_id", "received_ms"], kind="stable")
          .drop_duplicates("event_id", keep="first"))
    df = df[df["user_key"].notna() & df["item_id"].notna()]
    codes = {k: event_code(k) for k in df["kind"].unique()}
    return pd.DataFrame({
        "user_key": df["user_key"].astype(str).to_numpy(),
        "item_id": df["item_id"].astype(str).to_numpy(),
        "event": df["kind"].map(codes).to_numpy(np.int8),
        "value": df["value"].fillna(1.0).to_numpy(np.float32),
        "ts": (df["ts"].to_numpy(np.int64) // 1000),
    })


def with_feedback(ds: Dataset, lake: str | Path, since: str | None = None) -> Dataset:
    """`ds` plus the lake's feedback: its users and items keep their indices, known users
    are recognised by their keys, new keys and items follow in id order."""
    fb = read_feedback(lake, since)
    by_key = {user_key(str(u)): i for i, u in enumerate(ds.user_ids.tolist())}
    keys = fb["user_key"].to_numpy()
    strangers = sorted(set(keys.tolist()) - by_key.keys())
    by_key.update({k: ds.n_users + n for n, k in enumerate(strangers)})
    items = dict(ds.item_index)
    new_items = sorted(set(fb["item_id"].tolist()) - items.keys())
    items.update({it: ds.n_items + n for n, it in enumerate(new_items)})
    item_ids = np.concatenate([ds.items.ids, np.asarray(new_items, dtype=object)])
    return Dataset(
        name=f"{ds.name}+lake",
        user_ids=np.concatenate([ds.user_ids, np.asarray(strangers, dtype=object)]),
        items=item_table(item_ids, ds.items.to_frame()),
        user=np.concatenate([ds.user, np.fromiter((by_key[k] for k in keys), np.int32,
                                                  len(keys))]),
        item=np.concatenate([ds.item, np.fromiter((items[i] for i in fb["item_id"]), np.int32,
                                                  len(fb))]),
        event=np.concatenate([ds.event, fb["event"].to_numpy(np.int8)]),
        value=np.concatenate([ds.value, fb["value"].to_numpy(np.float32)]),
        ts=np.concatenate([ds.ts, fb["ts"].to_numpy(np.int64)]))
