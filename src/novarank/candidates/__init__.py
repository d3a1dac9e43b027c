"""Candidate sources: each is fitted from a Dataset into plain arrays a release can store."""

from novarank.candidates.als import ALSConfig, fit_als
from novarank.candidates.ann import ItemIndex
from novarank.candidates.itemitem import ItemItemConfig, fit_item_item, top_n_per_row
from novarank.candidates.popularity import item_quality, popularity, trending

__all__ = [
    "ALSConfig",
    "ItemIndex",
    "ItemItemConfig",
    "fit_als",
    "fit_item_item",
    "item_quality",
    "popularity",
    "top_n_per_row",
    "trending",
]
