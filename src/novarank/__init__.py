"""novarank: a personalized ranking service that proves its own launch."""

from novarank.data.dataset import Dataset
from novarank.data.loaders import load as load_data
from novarank.online.results import FeedItem, FeedPage
from novarank.online.service import RankingService, open_local
from novarank.ranking.recommender import Recommender
from novarank.release.bundle import load_release, save_release
from novarank.release.lock import verify_release
from novarank.training import fit_model
from novarank.version import __version__

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
