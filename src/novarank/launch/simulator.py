"""Simulated users whose behaviour comes from a ground-truth taste model.

A session asks for a feed, sees every item shown (impressions) and clicks, watches,
likes, shares or skips with probabilities from the truth, so CTR and watch time differ
between rankers and variants for real reasons. Cohorts follow the release's history
sizes; cold users are new ids with tastes drawn near existing users'. New uploads get
truth vectors too, so whether the service surfaces them can be measured.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from novarank.data.synthetic import TasteModel
from novarank.evaluation.metrics import cohort_of

DEFAULT_COHORTS = {"cold": 0.10, "light": 0.40, "medium": 0.35, "heavy": 0.15}


@dataclass
class SimUser:
    user_id: str
    cohort: str
    taste: np.ndarray


@dataclass
class Simulator:
    truth: TasteModel
    item_ids: list[str]  # truth item index -> catalog id
    user_ids: list[str]  # truth user index -> id
    history_sizes: np.ndarray  # per truth user, in the release
    cohorts: dict[str, float] = field(default_factory=lambda: dict(DEFAULT_COHORTS))
    seed: int = 0
    position_decay: float = 0.08  # attention falls with the slot
    _extra: dict[str, tuple[np.ndarray, float]] = field(default_factory=dict)

    def __post_init__(self) -> None:
        # who arrives and what they do draw from separate streams: the users of a run (and so
        # its A/B allocation) then depend on the seed alone, not on what the feeds showed
        arrivals, behaviour = np.random.SeedSequence(self.seed).spawn(2)
        self.arrivals = np.random.default_rng(arrivals)
        self.rng = np.random.default_rng(behaviour)
        total = sum(self.cohorts.values())
        if total <= 0 or any(v < 0 for v in self.cohorts.values()):
            raise ValueError(f"cohort proportions must be >= 0 and not all 0: {self.cohorts}")
        unknown = set(self.cohorts) - set(DEFAULT_COHORTS)
        if unknown:
            raise ValueError(f"unknown cohort(s) {sorted(unknown)}")
        self._shares = {k: v / total for k, v in self.cohorts.items()}
        by: dict[str, list[int]] = {c: [] for c in DEFAULT_COHORTS}
        for u, n in enumerate(self.history_sizes.tolist()):
            by[cohort_of(int(n))].append(u)
        self._pool = {c: np.asarray(v, dtype=np.int64) for c, v in by.items()}
        self._index = {it: i for i, it in enumerate(self.item_ids)}
        self._cold = 0

    # ---- users -------------------------------------------------------------------------
    def pick_user(self) -> SimUser:
        names = list(self._shares)
        cohort = names[int(self.arrivals.choice(len(names), p=list(self._shares.values())))]
        pool = self._pool.get(cohort, np.empty(0, np.int64))
        if cohort == "cold" or not len(pool):
            self._cold += 1
            base = self.truth.user_factors[self.arrivals.integers(0, len(self.truth.user_factors))]
            taste = np.clip(base + self.arrivals.normal(0, 0.02, base.shape), 0, None)
            return SimUser(f"sim-new-{self.seed}-{self._cold}", "cold",
                           (taste / max(taste.sum(), 1e-9)).astype(np.float32))
        u = int(pool[self.arrivals.integers(0, len(pool))])
        return SimUser(self.user_ids[u], cohort, self.truth.user_factors[u])

    # ---- items -------------------------------------------------------------------------
    def click_probs(self, user: SimUser, items: list[str]) -> np.ndarray:
        out = np.zeros(len(items), np.float64)
        for n, item in enumerate(items):
            i = self._index.get(item)
            if i is not None:
                vec, q = self.truth.item_factors[i], float(self.truth.item_quality[i])
            elif item in self._extra:
                vec, q = self._extra[item]
            else:
                continue
            logit = self.truth.scale * float(user.taste @ vec) + q + self.truth.bias
            out[n] = 1.0 / (1.0 + np.exp(-logit))
        return out

    def seen_probs(self, user: SimUser, items: list[str]) -> np.ndarray:
        """P(click) of each item where it is shown: its click probability, discounted by
        the attention its position gets (the position-based click model)."""
        return self.click_probs(user, items) / (1.0 + self.position_decay
                                                * np.arange(len(items)))

    def clicks(self, user: SimUser, items: list[str], rng: np.random.Generator) -> list[int]:
        """The positions clicked on a page, drawn from `seen_probs` with the caller's stream."""
        return np.flatnonzero(rng.random(len(items)) < self.seen_probs(user, items)).tolist()

    def new_upload(self, now: int) -> tuple[str, dict[str, Any]]:
        """A new item with a truth vector near an existing one (same niche, new video)."""
        base = int(self.rng.integers(0, len(self.item_ids)))
        vec = np.clip(self.truth.item_factors[base] + self.rng.normal(0, 0.03,
                                                                      self.truth.item_factors
                                                                      .shape[1]), 0, None)
        vec = (vec / max(vec.sum(), 1e-9)).astype(np.float32)
        item_id = f"upload-{self.seed}-{len(self._extra) + 1}"
        self._extra[item_id] = (vec, float(self.rng.normal(0.3, 0.3)))
        return item_id, {"title": f"New upload {len(self._extra)}",
                         "creator_id": f"sim-creator-{base % 50}", "tags": [],
                         "published_at": now}

    def user_in(self, cohort: str) -> str | None:
        """Some user of a cohort (a new id for 'cold'), for smoke tests."""
        if cohort == "cold":
            self._cold += 1
            return f"sim-new-{self.seed}-{self._cold}"
        pool = self._pool.get(cohort, np.empty(0, np.int64))
        return self.user_ids[int(pool[self.arrivals.integers(0, len(pool))])] if len(pool) else None

    def release_users(self, n: int) -> list[str]:
        """n distinct users with release history, most active first."""
        order = np.argsort(-self.history_sizes, kind="stable")
        return [self.user_ids[int(u)] for u in order[:n] if self.history_sizes[u] > 0]

    @property
    def n_items(self) -> int:
        return len(self.item_ids)

    @property
    def uploads(self) -> set[str]:
        return set(self._extra)

    # ---- behaviour -------------------------------------------------------------------------
    def react(self, user: SimUser, items: list[str], request_id: str | None) -> list[dict]:
        """Impressions for everything shown, then what the user does with each item."""
        events: list[dict[str, Any]] = []
        probs = self.click_probs(user, items)
        for pos, (item, p) in enumerate(zip(items, probs, strict=True)):
            base = {"user_id": user.user_id, "item_id": item, "request_id": request_id}
            events.append({"type": "impression", "position": pos, **base})
            p_seen = p / (1.0 + self.position_decay * pos)
            if self.rng.random() < p_seen:
                events.append({"type": "click", "position": pos, **base})
                frac = float(np.clip(self.rng.beta(1 + 6 * p, 1 + 6 * (1 - p)), 0.01, 1.0))
                events.append({"type": "watch", "value": round(frac, 4), **base})
                if self.rng.random() < 0.6 * p * frac:
                    events.append({"type": "like", **base})
                if self.rng.random() < 0.1 * p * frac:
                    events.append({"type": "share", **base})
            elif self.rng.random() < 0.05:
                events.append({"type": "skip", **base})
        return events


def oracle(interactions, factors: int = 32, target_ctr: float = 0.1,
           seed: int = 0) -> TasteModel:
    """Ground truth for a real data set: ALS fitted on *all* of it (the future included),
    scaled so an average shown item is clicked with probability about `target_ctr`."""
    from novarank.candidates.als import ALSConfig, fit_als

    users, items = fit_als(interactions, ALSConfig(factors=factors, iterations=10, seed=seed))
    rng = np.random.default_rng(seed)
    u = rng.integers(0, len(users), 20_000)
    i = rng.integers(0, len(items), 20_000)
    dots = np.einsum("ij,ij->i", users[u], items[i])
    scale = 3.0 / max(float(dots.std()), 1e-9)
    bias = float(np.log(target_ctr / (1 - target_ctr)) - scale * dots.mean())
    return TasteModel(users, items, np.zeros(len(items), np.float32), scale=scale, bias=bias)
