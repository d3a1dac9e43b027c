"""Ranking math: pure numpy, no I/O, no clock. Everything here is a function of its inputs."""

from novarank.ranking.blend import blend, standardize
from novarank.ranking.select import Selection, select_top_k

__all__ = ["Selection", "blend", "select_top_k", "standardize"]
