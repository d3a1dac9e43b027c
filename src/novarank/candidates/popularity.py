"""Item-level scores that need no user: popularity, time-decayed trending, smoothed quality."""

from __future__ import annotations

import numpy as np

from novarank.data.dataset import Dataset
from novarank.data.events import satisfaction, weights_of


def popularity(ds: Dataset) -> np.ndarray:
    """Total preference weight per item."""
    return np.bincount(ds.item, weights=weights_of(ds.event), minlength=ds.n_items).astype(
        np.float32)


def trending(ds: Dataset, as_of: int, half_life_s: float) -> np.ndarray:
    """Engagement weight per item, each event decayed by 2^(-age / half_life) at `as_of`.

    Events after `as_of` are ignored, so the same function serves offline evaluation at
    a past instant and live serving at "now".
    """
    w = weights_of(ds.event).astype(np.float64)
    age = (as_of - ds.ts).astype(np.float64)
    keep = (age >= 0) & (w > 0)
    decayed = w[keep] * np.exp2(-age[keep] / half_life_s)
    return np.bincount(ds.item[keep], weights=decayed, minlength=ds.n_items).astype(np.float32)


def item_quality(ds: Dataset, prior_strength: float = 20.0) -> np.ndarray:
    """Bayesian mean of satisfaction observations (completion, likes, ratings, skips).

    Items with few observations shrink to the catalog mean, so one lucky like cannot
    lift an item above a well-liked classic.
    """
    mask, obs = satisfaction(ds.event, ds.value)
    prior = float(obs[mask].mean()) if mask.any() else 0.5
    total = np.bincount(ds.item[mask], weights=obs[mask], minlength=ds.n_items)
    count = np.bincount(ds.item[mask], minlength=ds.n_items)
    return ((total + prior * prior_strength) / (count + prior_strength)).astype(np.float32)
