"""The request path: everything the API, the CLI and the launch harness call."""

from novarank.online.recommender import Feed, FeedItem, Recommender

__all__ = ["Feed", "FeedItem", "Recommender"]
