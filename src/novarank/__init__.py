"""novarank: a personalized ranking service that proves its own launch."""

__version__ = "0.1.0"

from novarank.data.dataset import Dataset
from novarank.data.loaders import load as load_data
from novarank.ranking.recommender import Feed, FeedItem, Recommender
from novarank.release.bundle import load_release, save_release
from novarank.release.lock import verify_release
from novarank.training import fit_model

__all__ = [
    "Dataset",
    "Feed",
    "FeedItem",
    "Recommender",
    "__version__",
    "fit_model",
    "load_data",
    "load_release",
    "save_release",
    "verify_release",
]
