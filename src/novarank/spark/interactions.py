"""Interactions as a Spark DataFrame with dense ids, read from any source the local engine
reads (through its loader), from Parquet straight into Spark, or from the telemetry lake.

The DataFrame holds the big part (one row per event: user, item, event, value, ts, seq);
the id tables stay on the driver, because the release stores them anyway.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd
import pyarrow as pa

from novarank.data.dataset import Dataset, ItemTable, item_table
from novarank.data.events import Event
from novarank.errors import DataError

if TYPE_CHECKING:
    from pyspark.sql import DataFrame, SparkSession

COLUMNS = ("user", "item", "event", "value", "ts", "seq")


@dataclass(frozen=True)
class SparkInteractions:
    """What the Spark engine trains on; `seq` breaks ties in time the way the local
    Dataset's row order does."""

    name: str
    frame: DataFrame  # user int, item int, event int, value float, ts bigint, seq bigint
    user_ids: np.ndarray  # str, by dense index
    items: ItemTable
    fingerprint: str

    @property
    def n_users(self) -> int:
        return len(self.user_ids)

    @property
    def n_items(self) -> int:
        return len(self.items)

    def with_frame(self, frame: DataFrame, name: str) -> SparkInteractions:
        """Same users and items, other interactions (a split's training part)."""
        return SparkInteractions(name, frame, self.user_ids, self.items,
                                 f"{self.fingerprint}/{name}")


def from_dataset(spark: SparkSession, ds: Dataset) -> SparkInteractions:
    """A Dataset's events, shipped to Spark as Arrow; same ids, same fingerprint."""
    table = pa.table({
        "user": pa.array(ds.user, pa.int32()), "item": pa.array(ds.item, pa.int32()),
        "event": pa.array(ds.event.astype(np.int32), pa.int32()),
        "value": pa.array(ds.value, pa.float32()), "ts": pa.array(ds.ts, pa.int64()),
        "seq": pa.array(np.arange(ds.n_events, dtype=np.int64), pa.int64()),
    })
    return SparkInteractions(ds.name, spark.createDataFrame(table), ds.user_ids, ds.items,
                             ds.fingerprint())


def _event_codes(frame: DataFrame, where: str) -> DataFrame:
    """`event` as Event codes, from names (case-insensitive); a name we do not know is a
    DataError naming it, never a silently dropped row."""
    from pyspark.sql import functions as F

    names = {e.name: int(e) for e in Event}
    upper = F.upper(F.trim(F.col("event").cast("string")))
    code = F.create_map(*[F.lit(x) for kv in names.items() for x in kv])[upper]
    frame = frame.withColumn("_name", upper).withColumn("event", code.cast("int"))
    bad = frame.filter(F.col("event").isNull()).select("_name").limit(1).collect()
    if bad:
        allowed = ", ".join(e.name.lower() for e in Event)
        raise DataError(f"unknown event {bad[0][0]!r} (allowed: {allowed})", path=where,
                        field="event")
    return frame.drop("_name")


def _ordered(raw: DataFrame, col: str, known: list[str]) -> np.ndarray:
    """`known`, then the other distinct values of `col` in order."""
    seen = raw.select(col).distinct().toArrow().column(0).to_pylist()
    return np.asarray(known + sorted(set(seen) - set(known)), dtype=object)


def index(spark: SparkSession, name: str, raw: DataFrame, catalog: pd.DataFrame | None,
          fingerprint: str, users: np.ndarray | None = None) -> SparkInteractions:
    """Dense ids for raw (user_id, item_id, event, value, ts) rows: `users` first (in
    order), then the other users in id order; catalog items first (in catalog order),
    then the other items in id order."""
    from pyspark.sql import functions as F

    raw = raw.withColumn("seq", F.monotonically_increasing_id())
    cols = ("user_id", "item_id", "ts")
    nulls = raw.agg(*[F.count(F.when(F.col(c).isNull(), 1)).alias(c) for c in cols]).first()
    for col in cols:  # one pass counts all three
        if nulls is not None and nulls[col]:
            raise DataError("a row has no value", path=name, field=col)
    users = _ordered(raw, "user_id", [] if users is None else users.tolist())
    item_ids = _ordered(raw, "item_id",
                        [] if catalog is None else catalog["item_id"].astype(str).tolist())
    umap = spark.createDataFrame(pa.table({"user_id": pa.array(users.tolist(), pa.string()),
                                           "user": pa.array(np.arange(len(users)), pa.int32())}))
    imap = spark.createDataFrame(pa.table({"item_id": pa.array(item_ids.tolist(), pa.string()),
                                           "item": pa.array(np.arange(len(item_ids)),
                                                            pa.int32())}))
    frame = (raw.join(umap, "user_id").join(F.broadcast(imap), "item_id")
             .select("user", "item", F.col("event").cast("int").alias("event"),
                     F.col("value").cast("float").alias("value"),
                     F.col("ts").cast("bigint").alias("ts"), "seq"))
    return SparkInteractions(name, frame, users, item_table(item_ids, catalog), fingerprint)


def _content_fingerprint(raw: DataFrame) -> str:
    """Order-free digest of the rows (count and a sum of row hashes, computed in Spark):
    equal content gives an equal digest wherever it is read from."""
    from pyspark.sql import functions as F

    h = F.xxhash64("user_id", "item_id", "event", "value", "ts").cast("decimal(38,0)")
    row = raw.agg(F.count(F.lit(1)).alias("n"), F.sum(h).alias("h")).collect()[0]
    return "spark:" + hashlib.sha256(f"{row['n']}:{row['h']}".encode()).hexdigest()


def from_parquet(spark: SparkSession, path: str, items: str | None = None
                 ) -> SparkInteractions:
    """The generic format (user_id, item_id, event, value, ts in unix seconds) read by
    Spark itself: a file, a directory of parts, or an object-store prefix (s3a://…)."""
    from pyspark.sql import functions as F

    raw = spark.read.parquet(path)
    missing = [c for c in ("user_id", "item_id", "ts") if c not in raw.columns]
    if missing:
        raise DataError("missing required column", path=path, field=missing[0])
    if "event" not in raw.columns:
        raw = raw.withColumn("event", F.lit("click"))
    if "value" not in raw.columns:
        raw = raw.withColumn("value", F.lit(1.0))
    raw = raw.select(F.col("user_id").cast("string"), F.col("item_id").cast("string"),
                     "event", F.col("value").cast("double"), F.col("ts").cast("bigint"))
    raw = _event_codes(raw, path)
    catalog = None
    if items:
        catalog = spark.read.parquet(items).toArrow().to_pandas()
        catalog["item_id"] = catalog["item_id"].astype(str)
    name = path.rstrip("/").rsplit("/", 1)[-1].removesuffix(".parquet")
    return index(spark, name, raw, catalog, _content_fingerprint(raw))


def _raw(spark: SparkSession, data: SparkInteractions) -> DataFrame:
    """Back to string ids: (user_id, item_id, event, value, ts)."""
    from pyspark.sql import functions as F

    umap = spark.createDataFrame(pa.table({
        "user": pa.array(np.arange(data.n_users), pa.int32()),
        "user_id": pa.array(data.user_ids.tolist(), pa.string())}))
    imap = spark.createDataFrame(pa.table({
        "item": pa.array(np.arange(data.n_items), pa.int32()),
        "item_id": pa.array(data.items.ids.tolist(), pa.string())}))
    return (data.frame.join(umap, "user").join(F.broadcast(imap), "item")
            .select("user_id", "item_id", "event", F.col("value").cast("double"), "ts"))


def read_feedback(spark: SparkSession, lake: str, since: str | None = None) -> DataFrame:
    """analytics.feedback.read_feedback read by Spark: user_key, item_id, event, value, ts."""
    from pyspark.sql import Window
    from pyspark.sql import functions as F
    from pyspark.sql.pandas.types import from_arrow_schema

    from novarank.analytics.feedback import COLUMNS, lake_scans
    from novarank.telemetry.schemas import SCHEMAS

    scans = lake_scans(lake, since)
    frames = []
    for kind in ("click", "engagement"):
        files = [str(p) for found in scans for p in found.files.get(kind, [])]
        if not files:
            continue
        df = spark.read.schema(from_arrow_schema(SCHEMAS[kind])).parquet(*files)
        if kind == "click":
            df = df.withColumn("kind", F.lit("click")).withColumn("value", F.lit(1.0))
        frames.append(df.select(*COLUMNS, "kind", "value"))
    if not frames:
        schema = "user_key string, item_id string, event int, value double, ts bigint"
        return spark.createDataFrame([], schema)
    union = frames[0] if len(frames) == 1 else frames[0].unionByName(frames[1])
    first = Window.partitionBy("event_id").orderBy("received_ms")
    once = (union.withColumn("_n", F.row_number().over(first)).filter(F.col("_n") == 1)
            .filter(F.col("user_key").isNotNull() & F.col("item_id").isNotNull()))
    codes = F.create_map(*[F.lit(x) for e in Event for x in (e.name.lower(), int(e))])
    return once.select("user_key", "item_id", codes[F.col("kind")].alias("event"),
                       F.coalesce(F.col("value"), F.lit(1.0)).alias("value"),
                       F.floor(F.col("ts") / 1000).cast("bigint").alias("ts"))


def with_feedback(spark: SparkSession, data: SparkInteractions, lake: str,
                  since: str | None = None) -> SparkInteractions:
    """analytics.feedback.with_feedback on Spark: known users recognised by their key."""
    from pyspark.sql import functions as F

    from novarank.telemetry.schemas import KEY_CHARS, KEY_SALT

    fb = read_feedback(spark, lake, since)
    users = spark.createDataFrame(pa.table({"base_id": pa.array(data.user_ids.tolist(),
                                                                pa.string())}))
    keyed = users.withColumn("user_key", F.substring(
        F.sha2(F.concat(F.lit(f"{KEY_SALT}:"), F.col("base_id")), 256), 1, KEY_CHARS))
    fresh = (fb.join(keyed, "user_key", "left")
             .select(F.coalesce(F.col("base_id"), F.col("user_key")).alias("user_id"),
                     "item_id", "event", "value", "ts"))
    raw = _raw(spark, data).unionByName(fresh)
    return index(spark, f"{data.name}+lake", raw, data.items.to_frame(),
                 _content_fingerprint(raw), users=data.user_ids)
