"""Per-user temporal holdout: each user's last fraction of interactions, by time."""

from __future__ import annotations

from dataclasses import dataclass
from itertools import pairwise
from typing import Generic, TypeVar

import numpy as np

from novarank.data.dataset import Dataset
from novarank.data.events import seen_mask, weights_of

Data = TypeVar("Data")


@dataclass(frozen=True)
class Holdout(Generic[Data]):
    """The training part (a Dataset, or an engine's own frame) and the held-out truth."""

    train: Data
    truth: dict[int, np.ndarray]  # user index -> held-out positive items unseen in train

    @property
    def users(self) -> np.ndarray:
        return np.fromiter(self.truth.keys(), dtype=np.int64, count=len(self.truth))


def temporal_split(ds: Dataset, fraction: float = 0.2) -> Holdout[Dataset]:
    """Hold out the last `fraction` of each user's events (rounded down; ties by order).

    The truth for a user is the set of positively-weighted items in their held-out
    events that they had not already seen in training: the task is to rank unseen items.
    """
    # events are sorted by (user, ts): rank within user is position - first position
    n = np.bincount(ds.user, minlength=ds.n_users)
    first = np.concatenate([[0], np.cumsum(n)[:-1]])
    rank = np.arange(ds.n_events) - first[ds.user]
    n_test = np.floor(n * fraction).astype(np.int64)
    test = rank >= (n - n_test)[ds.user]
    train = ds.subset(~test, name=f"{ds.name}/train")

    seen = seen_mask(train.event)
    seen_keys = np.unique(train.user[seen].astype(np.int64) * ds.n_items + train.item[seen])
    pos = test & (weights_of(ds.event) > 0)
    keys = np.unique(ds.user[pos].astype(np.int64) * ds.n_items + ds.item[pos])
    keys = keys[~np.isin(keys, seen_keys)]
    return Holdout(train, by_user(keys // ds.n_items, keys % ds.n_items))


def by_user(users: np.ndarray, items: np.ndarray) -> dict[int, np.ndarray]:
    """Rows sorted by user -> {user: their items}."""
    if not len(users):
        return {}
    bounds = np.flatnonzero(np.r_[True, users[1:] != users[:-1], True])
    return {int(users[a]): items[a:b] for a, b in pairwise(bounds)}
