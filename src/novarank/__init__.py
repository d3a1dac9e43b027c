"""novarank: a personalized ranking service that proves its own launch."""

__version__ = "0.1.0"

from novarank.data.dataset import Dataset  # noqa: E402
from novarank.data.loaders import load as load_data  # noqa: E402
from novarank.online.recommender import Feed, FeedItem, Recommender  # noqa: E402
from novarank.release.bundle import load_release, save_release  # noqa: E402
from novarank.release.lock import verify_release  # noqa: E402
from novarank.training import fit_model  # noqa: E402

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
