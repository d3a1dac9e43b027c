"""novarank: a personalized ranking service that proves its own launch."""

import importlib
from typing import TYPE_CHECKING, Any

from novarank.data.dataset import Dataset
from novarank.data.loaders import load as load_data
from novarank.ranking.recommender import Recommender
from novarank.release.bundle import load_release, save_release
from novarank.release.lock import verify_release
from novarank.training import fit_model
from novarank.version import __version__

if TYPE_CHECKING:
    from novarank.online.results import FeedItem, FeedPage
    from novarank.online.service import RankingService, open_local

# the serving names load the serving stack (stores, telemetry) on first use only: every
# CLI command and offline job imports this package
_SERVING = {"FeedItem": "novarank.online.results", "FeedPage": "novarank.online.results",
            "RankingService": "novarank.online.service", "open_local": "novarank.online.service"}


def __getattr__(name: str) -> Any:
    if name in _SERVING:
        return getattr(importlib.import_module(_SERVING[name]), name)
    raise AttributeError(f"module 'novarank' has no attribute {name!r}")


__all__ = [
    "Dataset",
    "FeedItem",
    "FeedPage",
    "RankingService",
    "Recommender",
    "__version__",
    "fit_model",
    "load_data",
    "load_release",
    "open_local",
    "save_release",
    "verify_release",
]
