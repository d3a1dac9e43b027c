"""Exploration with known propensities: what makes a feed's logs usable for estimating
another release's clicks before it takes traffic.

With chance `epsilon` a first page is a uniformly random ordering of k items drawn from the
ranker's top `window`; otherwise it is the ranker's top k. The chance that item i sits at
position p is then exact and needs no model:

    P(i at p) = (1 - epsilon) * [window[p] == i] + epsilon / window * [i in window]

so the `ranking` event logs the window and epsilon, and any (item, position) a candidate
release would show can be weighed offline (`evaluation/counterfactual.py`). Off (0) by
default: it costs clicks, measured in docs/benchmarks.md.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TypeVar

import numpy as np

T = TypeVar("T")


@dataclass(frozen=True)
class Exploration:
    epsilon: float = 0.0
    window: int = 30

    def __post_init__(self) -> None:
        if not 0.0 <= self.epsilon <= 1.0:
            raise ValueError(f"exploration epsilon must be in [0, 1], got {self.epsilon}")
        if self.window < 1:
            raise ValueError(f"exploration window must be >= 1, got {self.window}")

    @property
    def on(self) -> bool:
        return self.epsilon > 0.0

    def draw(self, ranked: int, k: int, rng: np.random.Generator) -> np.ndarray | None:
        """Positions of the ranker's order to show, or None for its own top k. `ranked` is
        how many items the ranker ordered (the window is the first `window` of them)."""
        top = min(self.window, ranked)
        if not self.on or top <= 1 or rng.random() >= self.epsilon:
            return None
        return rng.permutation(top)[: min(k, top)]

    def serve(self, ranked: Sequence[T], k: int, rng: np.random.Generator
              ) -> tuple[list[T], bool]:
        """The page shown (k items) and whether it was explored."""
        pick = self.draw(len(ranked), k, rng)
        if pick is None:
            return list(ranked[:k]), False
        return [ranked[int(j)] for j in pick], True


def propensity(window: Sequence[str], epsilon: float, item: str, position: int) -> float:
    """P(item shown at position) under the exploration that logged `window` (0 if never)."""
    if item not in window:
        return 0.0
    det = position < len(window) and window[position] == item
    return (1.0 - epsilon) * det + epsilon / len(window)
