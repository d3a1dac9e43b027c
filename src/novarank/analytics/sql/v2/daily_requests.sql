-- daily_requests v2: served requests by route, variant and release.
-- v2 is v1 in the SQL both DuckDB and Spark run (grouping_id, percentile_cont, CAST).
-- `level` says which grouping a row is ('group', 'route' or 'all'): a NULL key is a real
-- value (events with no variant or release), never a marker for a total.
SELECT
    CASE grouping_id(route, variant, release) WHEN 0 THEN 'group' WHEN 3 THEN 'route'
         ELSE 'all' END                                  AS level,
    route, variant, release,
    count(*)                                             AS requests,
    count(DISTINCT user_key)                             AS users,
    percentile_cont(0.50) WITHIN GROUP (ORDER BY latency_ms) AS p50_ms,
    percentile_cont(0.95) WITHIN GROUP (ORDER BY latency_ms) AS p95_ms,
    percentile_cont(0.99) WITHIN GROUP (ORDER BY latency_ms) AS p99_ms,
    count(*) FILTER (WHERE cache IN ('l1', 'l2'))        AS cache_hits,
    count(*) FILTER (WHERE cache IN ('l1', 'l2', 'miss')) AS cache_lookups,
    count(*) FILTER (WHERE fallback)                     AS fallbacks,
    CAST(sum(returned) AS BIGINT)                        AS items_returned,
    CAST(sum(k) AS BIGINT)                               AS items_requested
FROM request
GROUP BY GROUPING SETS ((route, variant, release), (route), ())
ORDER BY grouping_id(route, variant, release), route NULLS FIRST, variant NULLS FIRST,
         release NULLS FIRST
