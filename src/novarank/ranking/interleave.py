"""Team-draft interleaving: two rankers' pages merged into one, each slot credited to the
ranker that placed it (Radlinski, Kurup & Joachims, "How does clickthrough data reflect
retrieval quality?", CIKM 2008).

In every round the team with fewer picks (a coin decides a tie) adds its best item not yet
shown. The user judges both rankers on one page, so the comparison is within a user
rather than between two groups of users; the coin keeps it fair to either side.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

A, B = 0, 1


@dataclass(frozen=True)
class Interleaved:
    items: list[str]
    teams: list[int]  # A or B, per slot

    def credit(self, clicked: Sequence[int]) -> int:
        """+1 if the clicks favour A, -1 if B, 0 for a tie (no click counts as a tie)."""
        a = sum(self.teams[p] == A for p in clicked)
        b = len(clicked) - a
        return (a > b) - (a < b)


def team_draft(a: Sequence[str], b: Sequence[str], k: int, rng: np.random.Generator
               ) -> Interleaved:
    items: list[str] = []
    teams: list[int] = []
    shown: set[str] = set()
    picks = [0, 0]
    heads = [0, 0]
    lists = (a, b)
    while len(items) < k:
        team = A if picks[A] < picks[B] or (picks[A] == picks[B] and rng.random() < 0.5) else B
        for side in (team, 1 - team):  # a team with nothing left passes its turn
            src = lists[side]
            while heads[side] < len(src) and src[heads[side]] in shown:
                heads[side] += 1
            if heads[side] < len(src):
                item = src[heads[side]]
                items.append(item)
                teams.append(side)
                shown.add(item)
                picks[side] += 1
                break
        else:
            break  # both lists exhausted
    return Interleaved(items, teams)
