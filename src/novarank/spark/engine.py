"""The Spark engine behind `--engine spark`: the pipeline's split and fit, on Spark."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

from novarank.config import TrainConfig
from novarank.data.loaders import load
from novarank.evaluation.split import Holdout
from novarank.model import Model
from novarank.spark.fit import SparkFitConfig, fit_model, temporal_split
from novarank.spark.interactions import SparkInteractions, from_dataset, from_parquet

if TYPE_CHECKING:
    from pyspark.sql import SparkSession


class SparkEngine:
    """Splits and fits on `spark`; the pipeline tunes and evaluates on the driver."""

    name = "spark"

    def __init__(self, spark: SparkSession, config: SparkFitConfig | None = None) -> None:
        self.spark = spark
        self.config = config or SparkFitConfig()

    def read(self, spec: str, items: str | None = None) -> SparkInteractions:
        """A Parquet path or prefix (`parquet:` forces it, e.g. for s3a:// prefixes) is read
        by Spark itself; any other source goes through the local loader first."""
        if spec.startswith("parquet:") or spec.endswith(".parquet") or "://" in spec:
            return from_parquet(self.spark, spec.removeprefix("parquet:"), items)
        return from_dataset(self.spark, load(spec))

    def split(self, data: SparkInteractions, fraction: float) -> Holdout[SparkInteractions]:
        return temporal_split(data, fraction)

    def fit(self, data: SparkInteractions, cfg: TrainConfig, step: Callable[[str], object]
            ) -> Model:
        return fit_model(data, cfg, self.config, step)
