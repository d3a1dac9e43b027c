"""How much a data set rewards personalisation, measured from the data alone.

A synthetic world is only a fair test bed for estimators and rankers when its users behave
like real ones; these are the numbers it is calibrated against real data with:

- **lift**: Recall@10 of item-item, ALS and the (untuned) ranker over popularity, on the
  same held-out users of a per-user temporal split;
- **popularity tail**: the share of distinct positive (user, item) pairs on the top 10% of
  items, and the Gini of item counts;
- **taste concentration**: the mean share of a user's positive items that carry the user's
  most common tag (users with at least five).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

import numpy as np

from novarank.config import TrainConfig
from novarank.data.dataset import Dataset
from novarank.data.events import weights_of
from novarank.evaluation.evaluate import evaluate
from novarank.evaluation.split import temporal_split
from novarank.training import fit_model

PERSONALISED = ("item_item", "als", "ranker")
MIN_TAGGED = 5  # positives a user needs for a taste concentration


@dataclass(frozen=True)
class WorldProfile:
    name: str
    users: int
    items: int
    positives_per_user: float  # median distinct positive items
    recall: dict[str, float]  # method -> Recall@10
    lift: dict[str, float]  # method -> its Recall@10 / popularity's
    top_decile_share: float
    gini: float
    taste_concentration: float

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def _positive_pairs(ds: Dataset) -> tuple[np.ndarray, np.ndarray]:
    pos = weights_of(ds.event) > 0
    n_items = len(ds.items)
    pairs = np.unique(ds.user[pos].astype(np.int64) * n_items + ds.item[pos])
    return pairs // n_items, pairs % n_items


def _taste_concentration(users: np.ndarray, items: np.ndarray, tags: np.ndarray) -> float:
    vocab: dict[str, int] = {}
    rows, cols = [], []
    for i, joined in enumerate(tags.tolist()):
        for t in filter(None, str(joined).split("|")):
            rows.append(i)
            cols.append(vocab.setdefault(t, len(vocab)))
    if not vocab:
        return float("nan")
    item_tags = np.zeros((len(tags), len(vocab)), dtype=np.float32)
    item_tags[rows, cols] = 1.0
    per_user = np.zeros((int(users.max()) + 1, len(vocab)), dtype=np.float32)
    np.add.at(per_user, users, item_tags[items])
    n = np.bincount(users, minlength=len(per_user))
    keep = n >= MIN_TAGGED
    return float((per_user[keep].max(1) / n[keep]).mean()) if keep.any() else float("nan")


def profile(ds: Dataset, cfg: TrainConfig | None = None, max_users: int = 2_000,
            seed: int = 0) -> WorldProfile:
    """The data set's lifts, popularity tail and taste concentration (one untuned fit)."""
    cfg = cfg or TrainConfig()
    holdout = temporal_split(ds, cfg.holdout_fraction)
    report = evaluate(fit_model(holdout.train, cfg), holdout, max_users=max_users, seed=seed)
    recall = {m: float(report.get(m)["recall"]) for m in (*PERSONALISED, "popularity")}
    base = max(recall["popularity"], 1e-9)
    users, items = _positive_pairs(ds)
    counts = np.sort(np.bincount(items, minlength=len(ds.items)))
    n = len(counts)
    gini = float((2 * np.arange(1, n + 1) - n - 1) @ counts / (n * max(counts.sum(), 1)))
    top = counts[::-1][: max(1, n // 10)].sum() / max(counts.sum(), 1)
    per_user = np.bincount(users)
    return WorldProfile(
        name=ds.name, users=int((per_user > 0).sum()), items=len(ds.items),
        positives_per_user=float(np.median(per_user[per_user > 0])),
        recall={m: round(v, 4) for m, v in recall.items()},
        lift={m: round(recall[m] / base, 3) for m in PERSONALISED},
        top_decile_share=round(float(top), 3), gini=round(gini, 3),
        taste_concentration=round(_taste_concentration(users, items, ds.items.tags), 3))


@dataclass(frozen=True)
class Tolerance:
    """How near a world must come to the reference to be called calibrated."""

    min_lift: float = 1.2  # every personalised method beats popularity by at least this
    lift_ratio: tuple[float, float] = (0.6, 1.6)  # its lift over the reference's lift
    share_gap: float = 0.1  # top-decile share, absolute
    taste_gap: float = 0.15  # taste concentration, absolute


def differences(world: WorldProfile, reference: WorldProfile,
                tol: Tolerance = Tolerance()) -> list[str]:
    """What keeps `world` from behaving like `reference`; empty when calibrated."""
    out = []
    lo, hi = tol.lift_ratio
    for m in PERSONALISED:
        lift, ref = world.lift[m], reference.lift[m]
        if lift < tol.min_lift:
            out.append(f"{m} lifts Recall@10 over popularity only {lift:.2f}x "
                       f"(< {tol.min_lift}x; {reference.name}: {ref:.2f}x)")
        elif not lo <= lift / ref <= hi:
            out.append(f"{m} lift {lift:.2f}x is {lift / ref:.2f} of {reference.name}'s "
                       f"{ref:.2f}x (outside {lo}-{hi})")
    if abs(world.top_decile_share - reference.top_decile_share) > tol.share_gap:
        out.append(f"top 10% of items hold {world.top_decile_share:.2f} of positives "
                   f"({reference.name}: {reference.top_decile_share:.2f}, ±{tol.share_gap})")
    if abs(world.taste_concentration - reference.taste_concentration) > tol.taste_gap:
        out.append(f"taste concentration {world.taste_concentration:.2f} "
                   f"({reference.name}: {reference.taste_concentration:.2f}, ±{tol.taste_gap})")
    return out
