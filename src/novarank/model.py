"""A trained model: every array serving needs, with no reference back to the Dataset."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
import scipy.sparse as sp

from novarank.candidates.ann import ItemIndex
from novarank.config import TrainConfig


@dataclass
class Model:
    """What a release stores. Arrays only (plus configs), so it can be memory-mapped."""

    name: str
    user_ids: np.ndarray  # str
    item_ids: np.ndarray  # str
    titles: np.ndarray  # str
    creators: np.ndarray  # int32 code per item, -1 unknown
    creator_names: np.ndarray  # str per creator code
    tags: np.ndarray  # str, "|"-joined
    published_at: np.ndarray  # int64, NO_TIME unknown
    available: np.ndarray  # bool
    hist_indptr: np.ndarray  # int64 (n_users + 1)
    hist_items: np.ndarray  # int32, per user oldest -> newest, distinct
    hist_ts: np.ndarray  # int64 last interaction time
    hist_weight: np.ndarray  # float32 preference weight (0: seen but not liked, e.g. skip)
    popularity: np.ndarray  # float32
    trending: np.ndarray  # float32, decayed to `as_of`
    quality: np.ndarray  # float32 in [0, 1]
    item_item: sp.csr_matrix  # items x items neighbours
    als_users: np.ndarray  # float32 (n_users, f)
    als_items: np.ndarray  # float32 (n_items, f)
    facets: sp.csr_matrix  # items x facets, rows L2-normalised
    facet_names: np.ndarray  # str
    as_of: int  # time the model's clock stopped (last training event)
    config: TrainConfig
    data_fingerprint: str = ""
    metrics: dict[str, Any] = field(default_factory=dict)

    @property
    def n_users(self) -> int:
        return len(self.user_ids)

    @property
    def n_items(self) -> int:
        return len(self.item_ids)

    def ann_ids(self) -> np.ndarray:
        """Items whose factors carry signal (some interaction): what the ANN index holds."""
        return np.flatnonzero(np.asarray(self.popularity) > 0)

    def build_index(self) -> ItemIndex:
        return ItemIndex.build(self.als_items, exact_max=self.config.ranker.full_scan_max,
                               ids=self.ann_ids())
