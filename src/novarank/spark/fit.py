"""Every artifact of a release computed on Spark: the same definitions as training.py and
candidates/, written as DataFrame jobs so their cost spreads over executors.

Only results the release stores come back to the driver (per-item arrays, the top-N
neighbour lists, the factor matrices and the per-user histories).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING, Any

import numpy as np
import pyarrow as pa
import scipy.sparse as sp

from novarank.config import TrainConfig
from novarank.data.events import PREFERENCE_WEIGHT, SEEN_EVENTS, Event
from novarank.evaluation.split import Holdout, by_user
from novarank.model import Model
from novarank.spark.interactions import SparkInteractions
from novarank.training import DAY, assemble

if TYPE_CHECKING:
    from pyspark.sql import Column, DataFrame

Step = Callable[[str], object]


@dataclass(frozen=True)
class SparkFitConfig:
    """What only the Spark engine needs to know.

    `history_cap` bounds the item-item self-join: a user contributes the co-occurrences of
    at most their `history_cap` most recent items (cost per user is quadratic in it). Above
    the longest history the neighbours equal the local engine's exactly.
    `als_reg_scale`: Spark's ALS multiplies its regParam by each user's (item's) number
    of ratings; ours does not. regParam = als_regularization * this, so the default keeps
    the local engine's effective shrinkage at a typical history length.
    """

    history_cap: int = 1_000
    als_reg_scale: float = 0.01
    als_blocks: int = 4


def _weight(event: Column) -> Column:
    from pyspark.sql import functions as F

    table = [float(PREFERENCE_WEIGHT.get(Event(i), 0.0)) for i in range(max(Event) + 1)]
    return F.array(*[F.lit(w) for w in table])[event]


def _seen(event: Column) -> Column:
    return event.isin([int(e) for e in SEEN_EVENTS])


def _dense(rows: pa.Table, key: str, value: str, n: int, dtype: Any = np.float32
           ) -> np.ndarray:
    out = np.zeros(n, dtype=dtype)
    out[rows.column(key).to_numpy()] = rows.column(value).to_numpy()
    return out


def _item_scores(events: DataFrame, n_items: int, as_of: int, half_life_s: float,
                 prior_strength: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Popularity, trending at `as_of` and smoothed quality, in one pass over the events."""
    from pyspark.sql import functions as F

    ev, val = F.col("event"), F.col("value")
    w = _weight(ev)
    age = F.lit(as_of) - F.col("ts")
    clip = F.least(F.greatest(val, F.lit(0.0)), F.lit(1.0))
    obs = (F.when(ev == int(Event.WATCH), clip)
           .when(ev.isin(int(Event.LIKE), int(Event.SHARE)), F.lit(1.0))
           .when(ev == int(Event.SKIP), F.lit(0.0))
           .when(ev == int(Event.RATING),
                 F.least(F.greatest((val - 1.0) / 4.0, F.lit(0.0)), F.lit(1.0))))
    events = events.withColumn("w", w).withColumn("obs", obs.cast("float"))
    decayed = F.when((age >= 0) & (F.col("w") > 0),
                     F.col("w") * F.pow(F.lit(2.0), -age / F.lit(half_life_s)))
    zero = F.lit(0.0)
    per_item = events.groupBy("item").agg(
        F.sum("w").alias("popularity"), F.coalesce(F.sum(decayed), zero).alias("trending"),
        F.coalesce(F.sum("obs"), zero).alias("obs_sum"), F.count("obs").alias("obs_n")
    ).toArrow()
    pop = _dense(per_item, "item", "popularity", n_items)
    trend = _dense(per_item, "item", "trending", n_items)
    total = _dense(per_item, "item", "obs_sum", n_items, np.float64)
    count = _dense(per_item, "item", "obs_n", n_items, np.float64)
    # the catalog-wide mean observation, from the per-item sums (no second pass)
    prior = float(total.sum() / count.sum()) if count.sum() else 0.5
    quality = ((total + prior * prior_strength) / (count + prior_strength)).astype(np.float32)
    return pop, trend, quality


def _histories(events: DataFrame, n_users: int
               ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Distinct seen items per user, oldest first (ties by item): the ranker's filter and
    affinity input, as (indptr, items, last_ts, weight)."""
    from pyspark.sql import functions as F

    rows = (events.filter(_seen(F.col("event")))
            .groupBy("user", "item").agg(F.max("ts").alias("ts"),
                                         F.sum(_weight(F.col("event"))).alias("w"))
            .orderBy("user", "ts", "item").toArrow())
    users = rows.column("user").to_numpy().astype(np.int64)
    indptr = np.concatenate([[0], np.cumsum(np.bincount(users, minlength=n_users))])
    return (indptr.astype(np.int64), rows.column("item").to_numpy().astype(np.int32),
            rows.column("ts").to_numpy().astype(np.int64),
            rows.column("w").to_numpy().astype(np.float32))


def _neighbours(pairs: DataFrame, n_items: int, neighbours: int, shrinkage: float,
                history_cap: int) -> sp.csr_matrix:
    """Shrunk cosine over binarised interactions, top `neighbours` per item, by a capped
    self-join on the user (each unordered pair counted once, then mirrored)."""
    from pyspark.sql import Window
    from pyspark.sql import functions as F

    norms = pairs.groupBy("item").agg(F.sqrt(F.count(F.lit(1))).alias("norm"))
    recent = Window.partitionBy("user").orderBy(F.col("ts").desc(), F.col("item"))
    capped = (pairs.withColumn("r", F.row_number().over(recent))
              .filter(F.col("r") <= history_cap).select("user", "item"))
    a, b = capped.alias("a"), capped.alias("b")
    co = (a.join(b, (F.col("a.user") == F.col("b.user")) & (F.col("a.item") < F.col("b.item")))
          .groupBy(F.col("a.item").alias("i"), F.col("b.item").alias("j"))
          .agg(F.count(F.lit(1)).cast("float").alias("c")))
    ni = F.broadcast(norms.select(F.col("item").alias("i"), F.col("norm").alias("ni")))
    nj = F.broadcast(norms.select(F.col("item").alias("j"), F.col("norm").alias("nj")))
    sim = (co.join(ni, "i").join(nj, "j")
           .select("i", "j", (F.col("c") / (F.col("ni").cast("float") * F.col("nj").cast("float")
                                            + F.lit(shrinkage))).cast("float").alias("s")))
    mirrored = F.explode(F.array(F.struct(F.col("i").alias("a"), F.col("j").alias("b"), "s"),
                                 F.struct(F.col("j").alias("a"), F.col("i").alias("b"), "s")))
    both = sim.select(mirrored.alias("p")).select(F.col("p.a").alias("i"),
                                                  F.col("p.b").alias("j"), F.col("p.s").alias("s"))
    best = Window.partitionBy("i").orderBy(F.col("s").desc(), F.col("j"))
    top = (both.withColumn("r", F.row_number().over(best)).filter(F.col("r") <= neighbours)
           .select("i", "j", "s").orderBy("i", "j").toArrow())
    rows = top.column("i").to_numpy().astype(np.int64)
    indptr = np.concatenate([[0], np.cumsum(np.bincount(rows, minlength=n_items))])
    return sp.csr_matrix((top.column("s").to_numpy().astype(np.float32),
                          top.column("j").to_numpy().astype(np.int32), indptr),
                         shape=(n_items, n_items))


def _factors(rows: pa.Table, n: int, f: int) -> np.ndarray:
    out = np.zeros((n, f), dtype=np.float32)
    ids = rows.column("id").to_numpy()
    if len(ids):
        feats = rows.column("features").combine_chunks()
        out[ids] = feats.flatten().to_numpy().reshape(len(ids), f)
    return out


def _als(matrix: DataFrame, n_users: int, n_items: int, cfg: TrainConfig, scfg: SparkFitConfig
         ) -> tuple[np.ndarray, np.ndarray]:
    """Spark MLlib's implicit-preference ALS (confidence 1 + alpha * weight)."""
    from pyspark.ml.recommendation import ALS

    als = ALS(rank=cfg.als_factors, maxIter=cfg.als_iterations,
              regParam=cfg.als_regularization * scfg.als_reg_scale, alpha=cfg.als_alpha,
              implicitPrefs=True, seed=cfg.seed, userCol="user", itemCol="item",
              ratingCol="w", numUserBlocks=scfg.als_blocks, numItemBlocks=scfg.als_blocks)
    model = als.fit(matrix)
    return (_factors(model.userFactors.toArrow(), n_users, cfg.als_factors),
            _factors(model.itemFactors.toArrow(), n_items, cfg.als_factors))


def fit_model(data: SparkInteractions, cfg: TrainConfig | None = None,
              scfg: SparkFitConfig | None = None, step: Step = lambda _: None) -> Model:
    """Train every component on Spark; the Model is what training.fit_model returns."""
    from pyspark import StorageLevel
    from pyspark.sql import functions as F

    cfg, scfg = cfg or TrainConfig(), scfg or SparkFitConfig()
    events = data.frame.persist(StorageLevel.MEMORY_AND_DISK)
    as_of_row = events.agg(F.max("ts")).collect()[0][0]
    as_of = int(as_of_row) if as_of_row is not None else 0
    step("histories")
    indptr, h_items, h_ts, h_w = _histories(events, data.n_users)
    step("popularity, trending, quality")
    pop, trend, qual = _item_scores(events, data.n_items, as_of,
                                    cfg.ranker.trending_half_life_days * DAY, cfg.quality_prior)
    matrix = (events.withColumn("w", _weight(F.col("event"))).filter(F.col("w") > 0)
              .groupBy("user", "item").agg(F.sum("w").cast("float").alias("w"),
                                           F.max("ts").alias("ts"))
              .persist(StorageLevel.MEMORY_AND_DISK))
    step("item-item neighbours")
    sims = _neighbours(matrix, data.n_items, cfg.neighbours, cfg.shrinkage, scfg.history_cap)
    step("ALS factors")
    users_f, items_f = _als(matrix, data.n_users, data.n_items, cfg, scfg)
    matrix.unpersist()
    events.unpersist()
    step("facets")
    model = assemble(data.name, data.user_ids, data.items, (indptr, h_items, h_ts, h_w),
                     (pop, trend, qual), sims, (users_f, items_f), as_of, cfg, data.fingerprint)
    model.metrics = {"engine": {"name": "spark", **asdict(scfg)}}
    return model


def temporal_split(data: SparkInteractions, fraction: float = 0.2
                   ) -> Holdout[SparkInteractions]:
    """evaluation.split.temporal_split on Spark: each user's last `fraction` of events
    (rounded down; ties in time by `seq`) is held out; the truth is the held-out positive
    items the user had not seen in training. Only the truth comes back to the driver."""
    from pyspark.sql import Window
    from pyspark.sql import functions as F

    per_user = Window.partitionBy("user")
    ordered = per_user.orderBy("ts", "seq")
    marked = (data.frame.withColumn("n", F.count(F.lit(1)).over(per_user))
              .withColumn("r", F.row_number().over(ordered) - 1)
              .withColumn("test", F.col("r") >= F.col("n") - F.floor(F.col("n") * fraction)))
    train = marked.filter(~F.col("test")).select(*data.frame.columns)
    seen = train.filter(_seen(F.col("event"))).select("user", "item").distinct()
    truth_rows = (marked.filter(F.col("test") & (_weight(F.col("event")) > 0))
                  .select("user", "item").distinct().join(seen, ["user", "item"], "left_anti")
                  .orderBy("user", "item").toArrow())
    truth = by_user(truth_rows.column("user").to_numpy().astype(np.int64),
                    truth_rows.column("item").to_numpy().astype(np.int32))
    return Holdout(data.with_frame(train, f"{data.name}/train"), truth)
