"""The ranker over a release. blend and select are pure numpy (no I/O, no clock);
Recommender scores one user over an immutable catalog snapshot (catalog.py). Offline
evaluation and serving both use it; nothing here imports serving."""

from novarank.ranking.blend import blend, standardize
from novarank.ranking.select import Selection, select_top_k

__all__ = ["Selection", "blend", "select_top_k", "standardize"]
