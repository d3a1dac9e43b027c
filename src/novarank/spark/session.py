"""One place that builds the SparkSession, with defaults that suit a small local run."""

from __future__ import annotations

import importlib.util
import os
import shutil
import warnings
from collections.abc import Mapping
from typing import TYPE_CHECKING

from novarank.errors import ConfigError

if TYPE_CHECKING:
    from pyspark.sql import SparkSession

LOCAL = "local[2]"


def spark_session(master: str | None = None, app: str = "novarank",
                  conf: Mapping[str, str] | None = None) -> SparkSession:
    """A session on `master` (default: $SPARK_MASTER or local[2]); `conf` wins over ours.

    Under `spark-submit` the master and resources come from the submit command: pass no
    master and nothing here overrides them.
    """
    if importlib.util.find_spec("pyspark") is None:
        raise ConfigError("the Spark engine needs pyspark: pip install 'novarank[spark]'")
    if not (os.environ.get("JAVA_HOME") or shutil.which("java")):
        raise ConfigError("the Spark engine needs Java 17 or later: put `java` on PATH or "
                          "set JAVA_HOME")
    from pyspark.sql import SparkSession

    # pyspark warns on every conversion that it prefers pandas < 3; ours go through Arrow
    warnings.filterwarnings("ignore", message="PySpark does not yet fully support pandas",
                            category=FutureWarning)
    builder = SparkSession.builder.appName(app)
    master = master or os.environ.get("SPARK_MASTER")
    if not master and "PYSPARK_GATEWAY_PORT" not in os.environ:  # not under spark-submit
        master = LOCAL
    if master:
        builder = builder.master(master)
    local = (master or "").startswith("local")
    if local:  # one machine: no need to find a routable address
        os.environ.setdefault("SPARK_LOCAL_IP", "127.0.0.1")
    defaults = {
        "spark.sql.execution.arrow.pyspark.enabled": "true",
        "spark.sql.session.timeZone": "UTC",
        "spark.ui.showConsoleProgress": "false",
        # a few partitions per core locally; a cluster sets its own
        **({"spark.sql.shuffle.partitions": "4", "spark.default.parallelism": "4",
            "spark.ui.enabled": "false", "spark.driver.memory": "4g",
            "spark.sql.adaptive.enabled": "true"} if local else {}),
    }
    for key, value in {**defaults, **(conf or {})}.items():
        builder = builder.config(key, value)
    spark = builder.getOrCreate()
    spark.sparkContext.setLogLevel("ERROR")
    return spark
