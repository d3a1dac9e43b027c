"""A synthetic video platform with a known ground truth.

Users have latent tastes over topics, creators publish items in their own styles,
uploads arrive over time, popularity follows a power law and activity follows the
clock. Every engagement is drawn from a saved `TasteModel`, so a simulator can later
ask what a user would really click, and offline metrics can be checked against truth.
Deterministic by seed; vectorised in chunks so 10M events take seconds, not minutes.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, fields
from pathlib import Path

import numpy as np

from novarank.data.dataset import Dataset, ItemTable
from novarank.data.events import Event
from novarank.errors import ConfigError

DAY = 86_400
TOPICS = [
    "music", "gaming", "comedy", "sports", "cooking", "travel", "science", "tech",
    "fashion", "fitness", "news", "art", "pets", "diy", "film", "education",
    "cars", "dance", "nature", "finance", "history", "beauty", "kids", "asmr",
]


FLOAT_OPTIONS = frozenset({"popularity_tail", "taste_concentration"})


@dataclass(frozen=True)
class SyntheticConfig:
    users: int = 5_000
    items: int = 2_000
    creators: int = 200
    events: int = 300_000  # approximate number of rows, impressions included
    topics: int = 16
    days: int = 30
    seed: int = 7
    start: int = 1_767_225_600  # 2026-01-01T00:00:00Z
    # calibrated against MovieLens-100K (tests/test_world.py, docs/benchmarks.md): with these
    # the item-item and ALS lifts over popularity, the popularity tail and users' taste
    # concentration are near the real data's. The old world (8, 1.1, 0.12) let popularity
    # beat every personalised method.
    candidates_per_exposure: int = 64  # how many items the platform's feed offered a choice of
    popularity_tail: float = 2.0  # Pareto shape of item popularity: smaller is heavier-tailed
    taste_concentration: float = 0.05  # Dirichlet weight of user tastes: smaller is narrower

    def __post_init__(self) -> None:
        for f in fields(self):
            if f.name != "start" and getattr(self, f.name) <= 0:
                raise ConfigError(f"synthetic.{f.name} must be > 0, got {getattr(self, f.name)}")
        if self.topics > len(TOPICS):
            raise ConfigError(f"synthetic.topics must be <= {len(TOPICS)}")

    @classmethod
    def parse(cls, spec: str) -> SyntheticConfig:
        """'synthetic' or 'synthetic:users=1000,items=500,events=50000,seed=3'."""
        _, _, args = spec.partition(":")
        known = {f.name for f in fields(cls)}
        kwargs: dict[str, float] = {}
        for part in filter(None, (a.strip() for a in args.split(","))):
            key, _, val = part.partition("=")
            if key not in known:
                raise ConfigError(f"unknown synthetic option '{key}' (known: {sorted(known)})")
            try:
                kwargs[key] = float(val) if key in FLOAT_OPTIONS else int(float(val))
            except ValueError:
                raise ConfigError(f"synthetic.{key} must be a number, got '{val}'") from None
        return cls(**kwargs)  # type: ignore[arg-type]  # ints where the field is an int


@dataclass
class TasteModel:
    """Ground truth: P(click | user, item) = sigmoid(scale * <u, v> + quality_i + bias)."""

    user_factors: np.ndarray  # (n_users, topics) on the simplex
    item_factors: np.ndarray  # (n_items, topics) on the simplex
    item_quality: np.ndarray  # (n_items,) intrinsic appeal, logit units
    scale: float = 7.0
    bias: float = -2.5

    def logit(self, users: np.ndarray, items: np.ndarray) -> np.ndarray:
        """Pairwise logits for aligned arrays of user and item indices."""
        dot = np.einsum("ij,ij->i", self.user_factors[users], self.item_factors[items])
        return self.scale * dot + self.item_quality[items] + self.bias

    def choice_utility(self, users: np.ndarray, items: np.ndarray) -> np.ndarray:
        """Logits of each user (n,) for the items offered to them (n, c), without the bias:
        a constant changes no choice."""
        dot = np.einsum("nk,nck->nc", self.user_factors[users], self.item_factors[items])
        return self.scale * dot + self.item_quality[items]

    def click_prob(self, user: int, items: np.ndarray) -> np.ndarray:
        items = np.asarray(items)
        return _sigmoid(self.logit(np.full(len(items), user), items))

    def save(self, path: str | Path) -> None:
        p = Path(path)
        np.savez_compressed(p.with_suffix(".npz"), user_factors=self.user_factors,
                            item_factors=self.item_factors, item_quality=self.item_quality)
        p.with_suffix(".json").write_text(json.dumps({"scale": self.scale, "bias": self.bias}))

    @classmethod
    def load(cls, path: str | Path) -> TasteModel:
        p = Path(path)
        arrays = np.load(p.with_suffix(".npz"))
        meta = json.loads(p.with_suffix(".json").read_text())
        return cls(arrays["user_factors"], arrays["item_factors"], arrays["item_quality"], **meta)


@dataclass
class SyntheticData:
    dataset: Dataset
    truth: TasteModel
    config: SyntheticConfig


def _sigmoid(x: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-x))


def _simplex(rng: np.random.Generator, n: int, k: int, concentration: float) -> np.ndarray:
    g = rng.gamma(concentration, 1.0, size=(n, k)).astype(np.float32)
    return g / np.maximum(g.sum(1, keepdims=True), 1e-12)


def diurnal_weights() -> np.ndarray:
    """Relative activity per minute of the day (UTC): quiet at 05:00, peak near 20:00."""
    minutes = np.arange(24 * 60) / 60.0
    return 1.0 + 0.85 * np.cos((minutes - 20.0) / 24.0 * 2 * np.pi)


def generate(cfg: SyntheticConfig = SyntheticConfig()) -> SyntheticData:
    rng = np.random.default_rng(cfg.seed)
    k = cfg.topics
    # creators and items ------------------------------------------------------------
    creator_style = _simplex(rng, cfg.creators, k, 0.15)
    creator_pop = rng.pareto(1.5, cfg.creators) + 1.0
    item_creator = rng.integers(0, cfg.creators, cfg.items)
    item_factors = 0.7 * creator_style[item_creator] + 0.3 * _simplex(rng, cfg.items, k, 0.2)
    item_quality = rng.normal(0.0, 0.6, cfg.items).astype(np.float32)
    # a third of the catalog predates the window; the rest is uploaded during it
    horizon = cfg.days * DAY
    published = np.where(rng.random(cfg.items) < 0.35,
                         cfg.start - rng.integers(0, 180 * DAY, cfg.items),
                         cfg.start + rng.integers(0, horizon, cfg.items)).astype(np.int64)
    item_pop = ((rng.pareto(cfg.popularity_tail, cfg.items) + 1.0)
                * np.sqrt(creator_pop[item_creator]))
    duration = np.exp(rng.normal(5.5, 0.8, cfg.items)).astype(np.float32)  # ~4 min median

    # users ----------------------------------------------------------------------------
    user_factors = _simplex(rng, cfg.users, k, cfg.taste_concentration)
    activity = np.exp(rng.normal(0.0, 1.1, cfg.users))  # long-tailed, few near-silent users

    truth = TasteModel(user_factors, item_factors.astype(np.float32), item_quality)

    # exposures: who, when, which item --------------------------------------------------
    n_exp = max(1, int(cfg.events / 1.3))  # ~1.5 rows per exposure; trimmed below
    users = rng.choice(cfg.users, n_exp, p=activity / activity.sum()).astype(np.int32)
    day = rng.integers(0, cfg.days, n_exp)
    minute_p = diurnal_weights()
    minute = rng.choice(len(minute_p), n_exp, p=minute_p / minute_p.sum())
    ts = cfg.start + day * DAY + minute * 60 + rng.integers(0, 60, n_exp)

    by_pub = np.argsort(published, kind="stable")
    cum_pop = np.cumsum(item_pop[by_pub])
    n_live = np.searchsorted(published[by_pub], ts, side="right")  # items online at ts
    n_live = np.maximum(n_live, 1)

    # each exposure: the feed offers c items drawn by popularity among those online, and the
    # user takes the one of highest utility (logit + Gumbel noise: a softmax choice)
    chosen = np.empty(n_exp, dtype=np.int32)
    c = cfg.candidates_per_exposure
    chunk = max(1, 4_000_000 // c)  # bounded memory: chunk x c candidates at a time
    for lo in range(0, n_exp, chunk):
        hi = min(lo + chunk, n_exp)
        draw = rng.random((hi - lo, c)) * cum_pop[n_live[lo:hi] - 1, None]
        cand = by_pub[np.minimum(np.searchsorted(cum_pop, draw), n_live[lo:hi, None] - 1)]
        gumbel = -np.log(-np.log(rng.random((hi - lo, c), dtype=np.float32) + 1e-12))
        util = truth.choice_utility(users[lo:hi], cand) + gumbel
        chosen[lo:hi] = cand[np.arange(hi - lo), util.argmax(1)]

    # outcomes -----------------------------------------------------------------------------
    p = _sigmoid(truth.logit(users, chosen))
    clicked = rng.random(n_exp) < p
    frac = np.clip(rng.beta(1.0 + 6.0 * p, 1.0 + 6.0 * (1.0 - p)), 0.01, 1.0)
    liked = clicked & (rng.random(n_exp) < 0.6 * p * frac)
    shared = clicked & (rng.random(n_exp) < 0.12 * p * frac)
    skipped = ~clicked & (rng.random(n_exp) < 0.3)

    parts = [
        (np.ones(n_exp, bool), Event.IMPRESSION, np.ones(n_exp), 0),
        (clicked, Event.CLICK, np.ones(n_exp), 1),
        (clicked, Event.WATCH, frac, 5),
        (liked, Event.LIKE, np.ones(n_exp), 30),
        (shared, Event.SHARE, np.ones(n_exp), 40),
        (skipped, Event.SKIP, np.ones(n_exp), 2),
    ]
    ev_user = np.concatenate([users[m] for m, *_ in parts])
    ev_item = np.concatenate([chosen[m] for m, *_ in parts])
    ev_kind = np.concatenate([np.full(m.sum(), kind, np.int8) for m, kind, *_ in parts])
    ev_val = np.concatenate([v[m].astype(np.float32) for m, _, v, _ in parts])
    ev_ts = np.concatenate([ts[m] + lag for m, _, _, lag in parts]).astype(np.int64)
    if len(ev_user) > cfg.events:  # trim to the requested size, keeping whole time order
        keep = np.sort(rng.choice(len(ev_user), cfg.events, replace=False))
        ev_user, ev_item, ev_kind, ev_val, ev_ts = (
            a[keep] for a in (ev_user, ev_item, ev_kind, ev_val, ev_ts))

    topic_names = np.array(TOPICS[:k], dtype=object)
    top2 = np.argsort(-item_factors, axis=1)[:, :2]
    items = ItemTable(
        ids=np.array([f"v{i}" for i in range(cfg.items)], dtype=object),
        title=np.array([f"{topic_names[t[0]].title()} video #{i}" for i, t in enumerate(top2)],
                       dtype=object),
        creator=np.array([f"c{c}" for c in item_creator], dtype=object),
        tags=np.array(["|".join(topic_names[t]) for t in top2], dtype=object),
        published_at=published,
        duration=duration,
    )
    ds = Dataset(name=f"synthetic-{cfg.users}u-{cfg.items}i-s{cfg.seed}",
                 user_ids=np.array([f"u{i}" for i in range(cfg.users)], dtype=object),
                 items=items, user=ev_user, item=ev_item, event=ev_kind, value=ev_val, ts=ev_ts)
    return SyntheticData(ds, truth, cfg)


def save(data: SyntheticData, out: str | Path) -> Path:
    """Write the generic format (interactions.parquet, items.parquet) and the truth model."""
    import pandas as pd

    d = Path(out)
    d.mkdir(parents=True, exist_ok=True)
    ds = data.dataset
    pd.DataFrame({
        "user_id": ds.user_ids[ds.user], "item_id": ds.items.ids[ds.item],
        "event": np.array([e.name.lower() for e in Event], dtype=object)[ds.event],
        "value": ds.value, "ts": ds.ts,
    }).to_parquet(d / "interactions.parquet", index=False)
    it = ds.items
    pd.DataFrame({"item_id": it.ids, "title": it.title, "creator_id": it.creator,
                  "tags": it.tags, "published_at": it.published_at,
                  "duration": it.duration}).to_parquet(d / "items.parquet", index=False)
    data.truth.save(d / "truth")
    (d / "synthetic.json").write_text(json.dumps(asdict(data.config), indent=2))
    return d
