"""Analytics over the telemetry lake: validated reads, daily rollups (DuckDB), tiles."""
