"""The request path: routing, caches, toggles, engagement, the feed: what the API and the
launch harness call. The ranker itself lives in novarank.ranking."""
