"""`novarank rollup --engine spark`: the same versioned SQL, the same views, on Spark.

The lake scan (which parts are readable) and the reconciliation stay on the driver:
they read Parquet footers and ledgers, not rows. Only the SQL runs on Spark.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import pyarrow as pa

from novarank.analytics.lake import Scan
from novarank.telemetry.schemas import SCHEMAS

if TYPE_CHECKING:
    from pyspark.sql import DataFrame, SparkSession


class SparkSqlEngine:
    """analytics.rollup's SqlEngine on a SparkSession: temp views, not tables."""

    name = "spark"

    def __init__(self, spark: SparkSession) -> None:
        self.spark = spark
        self._cached: list[DataFrame] = []

    def register(self, found: Scan, since_ms: int | None = None) -> None:
        from pyspark import StorageLevel
        from pyspark.sql.pandas.types import from_arrow_schema

        for kind, schema in SCHEMAS.items():
            spark_schema = from_arrow_schema(schema)
            files = [str(p) for p in found.files.get(kind, [])]
            # the declared schema, so a part written before an ADDED column reads it as null
            raw = (self.spark.read.schema(spark_schema).parquet(*files) if files
                   else self.spark.createDataFrame([], spark_schema))
            raw.createOrReplaceTempView(f"{kind}_raw")
            where = "" if since_ms is None else f"WHERE ts >= {int(since_ms)}"
            cols = ", ".join(f"`{f.name}`" for f in schema)
            one = self.spark.sql(
                f"SELECT {cols} FROM (SELECT *, row_number() OVER (PARTITION BY event_id "
                f"ORDER BY received_ms) AS _n FROM {kind}_raw {where}) WHERE _n = 1"
            ).persist(StorageLevel.MEMORY_AND_DISK)
            self._cached.append(one)
            one.createOrReplaceTempView(kind)

    def query(self, sql: str) -> pa.Table:
        return self.spark.sql(sql).toArrow()

    def close(self) -> None:
        for frame in self._cached:
            frame.unpersist()
        self._cached.clear()
        for kind in SCHEMAS:
            self.spark.catalog.dropTempView(kind)
            self.spark.catalog.dropTempView(f"{kind}_raw")
