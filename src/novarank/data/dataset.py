"""The typed, immutable in-memory dataset every stage after loading works from."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from functools import cached_property

import numpy as np
import pandas as pd
import scipy.sparse as sp

from novarank.data.events import Event, seen_mask, weights_of
from novarank.errors import DataError

NO_TIME = np.iinfo(np.int64).min  # published_at unknown


def _frozen(a: np.ndarray) -> np.ndarray:
    a = np.ascontiguousarray(a)
    a.setflags(write=False)
    return a


@dataclass(frozen=True)
class ItemTable:
    """Item metadata aligned with dense item indices."""

    ids: np.ndarray  # external ids, str
    title: np.ndarray  # str
    creator: np.ndarray  # str, "" when unknown
    tags: np.ndarray  # str, tags joined by "|"
    published_at: np.ndarray  # int64 unix seconds, NO_TIME when unknown
    duration: np.ndarray  # float32 seconds, NaN when unknown

    def __post_init__(self) -> None:
        n = len(self.ids)
        for name in ("title", "creator", "tags", "published_at", "duration"):
            if len(getattr(self, name)) != n:
                raise DataError(f"item column has {len(getattr(self, name))} rows, expected {n}",
                                field=name)
            object.__setattr__(self, name, _frozen(getattr(self, name)))
        object.__setattr__(self, "ids", _frozen(self.ids))

    @classmethod
    def stub(cls, ids: np.ndarray) -> ItemTable:
        n = len(ids)
        return cls(ids=np.asarray(ids, dtype=object), title=np.asarray(ids, dtype=object),
                   creator=np.full(n, "", dtype=object), tags=np.full(n, "", dtype=object),
                   published_at=np.full(n, NO_TIME, dtype=np.int64),
                   duration=np.full(n, np.nan, dtype=np.float32))

    def __len__(self) -> int:
        return len(self.ids)

    def to_frame(self) -> pd.DataFrame:
        """The catalog as `Dataset.from_frame` reads it back."""
        return pd.DataFrame({"item_id": self.ids, "title": self.title,
                             "creator_id": self.creator, "tags": self.tags,
                             "published_at": self.published_at, "duration": self.duration})


@dataclass(frozen=True)
class Dataset:
    """Users, items and interactions with dense ids; interactions sorted by (user, ts).

    Arrays are read-only: a Dataset is never changed after it is built, so every model
    trained from it can be traced back to one fingerprint.
    """

    name: str
    user_ids: np.ndarray
    items: ItemTable
    user: np.ndarray  # int32 dense user index per event
    item: np.ndarray  # int32 dense item index per event
    event: np.ndarray  # int8 Event code
    value: np.ndarray  # float32 (rating, watched fraction, ...)
    ts: np.ndarray  # int64 unix seconds
    _cache: dict = field(default_factory=dict, repr=False, compare=False)

    def __post_init__(self) -> None:
        n = len(self.user)
        for name in ("item", "event", "value", "ts"):
            if len(getattr(self, name)) != n:
                raise DataError(f"{name} has {len(getattr(self, name))} rows, expected {n}")
        if n and (self.user.max() >= len(self.user_ids) or self.item.max() >= len(self.items)):
            raise DataError("interaction refers to a user or item index out of range")
        order = np.lexsort((self.ts, self.user))
        if n and not np.all(order[1:] >= order[:-1]):  # sort once when the loader did not
            for name in ("user", "item", "event", "value", "ts"):
                object.__setattr__(self, name, getattr(self, name)[order])
        for name in ("user_ids", "user", "item", "event", "value", "ts"):
            object.__setattr__(self, name, _frozen(getattr(self, name)))

    # ---- construction -------------------------------------------------------------
    @classmethod
    def from_frame(cls, name: str, interactions: pd.DataFrame,
                   items: pd.DataFrame | None = None) -> Dataset:
        """Build from columns user_id, item_id, event, value, ts (event as Event codes).

        `items` (optional) has item_id and any of title, creator_id, tags, published_at,
        duration. Items in the catalog with no interactions are kept: they can still be
        recommended by freshness and backfill.
        """
        u_codes, u_ids = pd.factorize(interactions["user_id"].astype(str), sort=False)
        ext_items = interactions["item_id"].astype(str)
        if items is not None and len(items):
            catalog_ids = items["item_id"].astype(str)
            dup = catalog_ids[catalog_ids.duplicated()]
            if len(dup):
                raise DataError(f"item '{dup.iloc[0]}' appears twice in the catalog",
                                field="item_id")
            all_ids = pd.Index(catalog_ids).append(pd.Index(ext_items[~ext_items.isin(catalog_ids)]
                                                            .unique()))
        else:
            all_ids = pd.Index(ext_items.unique())
        i_codes = all_ids.get_indexer(ext_items)
        table = item_table(np.asarray(all_ids, dtype=object), items)
        return cls(
            name=name,
            user_ids=np.asarray(u_ids, dtype=object),
            items=table,
            user=u_codes.astype(np.int32),
            item=i_codes.astype(np.int32),
            event=interactions["event"].to_numpy(np.int8),
            value=interactions["value"].to_numpy(np.float32),
            ts=interactions["ts"].to_numpy(np.int64),
        )

    # ---- shape ----------------------------------------------------------------------
    @property
    def n_users(self) -> int:
        return len(self.user_ids)

    @property
    def n_items(self) -> int:
        return len(self.items)

    @property
    def n_events(self) -> int:
        return len(self.user)

    @cached_property
    def user_index(self) -> dict[str, int]:
        return {u: i for i, u in enumerate(self.user_ids)}

    @cached_property
    def item_index(self) -> dict[str, int]:
        return {it: i for i, it in enumerate(self.items.ids)}

    # ---- derived matrices -------------------------------------------------------------
    def matrix(self) -> sp.csr_matrix:
        """User x item preference weights (duplicates summed), positives only."""
        if "matrix" not in self._cache:
            w = weights_of(self.event)
            keep = w > 0
            m = sp.csr_matrix((w[keep], (self.user[keep], self.item[keep])),
                              shape=(self.n_users, self.n_items), dtype=np.float32)
            m.sum_duplicates()
            self._cache["matrix"] = m
        return self._cache["matrix"]

    def history_sizes(self) -> np.ndarray:
        """Number of distinct items each user engaged with (the cohort key)."""
        seen = seen_mask(self.event)
        pairs = np.unique(self.user[seen].astype(np.int64) * self.n_items + self.item[seen])
        return np.bincount(pairs // self.n_items, minlength=self.n_users)

    def subset(self, mask: np.ndarray, name: str | None = None) -> Dataset:
        """Same users and items, only the interactions where mask is true."""
        return Dataset(name=name or self.name, user_ids=self.user_ids, items=self.items,
                       user=self.user[mask], item=self.item[mask], event=self.event[mask],
                       value=self.value[mask], ts=self.ts[mask])

    @property
    def max_ts(self) -> int:
        return int(self.ts.max()) if self.n_events else 0

    def fingerprint(self) -> str:
        """sha256 over ids and interactions: two datasets with the same content match."""
        h = hashlib.sha256()
        h.update("\x1f".join(self.user_ids.tolist()).encode())
        h.update("\x1f".join(self.items.ids.tolist()).encode())
        for a in (self.user, self.item, self.event, self.value, self.ts):
            h.update(np.ascontiguousarray(a).tobytes())
        return h.hexdigest()

    def describe(self) -> dict[str, int | str]:
        kinds = np.bincount(self.event, minlength=len(Event))
        return {
            "name": self.name,
            "users": self.n_users,
            "items": self.n_items,
            "events": self.n_events,
            **{f"events_{e.name.lower()}": int(kinds[e]) for e in Event if kinds[e]},
        }


def item_table(ids: np.ndarray, items: pd.DataFrame | None) -> ItemTable:
    """Item metadata for `ids` (catalog rows first, in order), the rest stubbed."""
    table = ItemTable.stub(ids)
    if items is None or not len(items):
        return table
    n_cat = len(items)  # catalog rows come first in `ids`
    cols: dict[str, np.ndarray] = {}
    for col, key, fill, dtype in (
        ("title", "title", None, object),
        ("creator", "creator_id", "", object),
        ("tags", "tags", "", object),
        ("published_at", "published_at", NO_TIME, np.int64),
        ("duration", "duration", np.nan, np.float32),
    ):
        base = np.array(getattr(table, col), dtype=dtype, copy=True)
        if key in items.columns:
            vals = items[key]
            if dtype is object:
                vals = vals.fillna(fill if fill is not None else "").astype(str)
                if fill is None:  # title falls back to the id
                    vals = vals.where(vals != "", pd.Series(ids[:n_cat], index=vals.index))
            else:
                vals = vals.fillna(fill)
            base[:n_cat] = vals.to_numpy(dtype)
        cols[col] = base
    return ItemTable(ids=ids, **cols)
