-- daily_requests v1: served requests by route, variant and release.
-- `level` says which grouping a row is ('group', 'route' or 'all'): a NULL key is a real
-- value (events with no variant or release), never a marker for a total.
SELECT
    CASE GROUPING(route, variant, release) WHEN 0 THEN 'group' WHEN 3 THEN 'route'
         ELSE 'all' END                                  AS level,
    route, variant, release,
    count(*)                                             AS requests,
    count(DISTINCT user_key)                             AS users,
    quantile_cont(latency_ms, 0.50)                      AS p50_ms,
    quantile_cont(latency_ms, 0.95)                      AS p95_ms,
    quantile_cont(latency_ms, 0.99)                      AS p99_ms,
    count(*) FILTER (WHERE cache IN ('l1', 'l2'))        AS cache_hits,
    count(*) FILTER (WHERE cache IN ('l1', 'l2', 'miss')) AS cache_lookups,
    count(*) FILTER (WHERE fallback)                     AS fallbacks,
    sum(returned)::BIGINT                                AS items_returned,
    sum(k)::BIGINT                                       AS items_requested
FROM request
GROUP BY GROUPING SETS ((route, variant, release), (route), ())
ORDER BY GROUPING(route, variant, release), route NULLS FIRST, variant NULLS FIRST,
         release NULLS FIRST
