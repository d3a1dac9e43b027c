"""The Spark engine: training and daily rollups on Apache Spark (the `spark` extra).

Same inputs, same outputs as the local engine: a release built here is locked, verified
and served like any other, and a rollup writes the same daily tables as DuckDB's. Nothing
outside this package and the CLI imports pyspark.
"""
