-- daily_errors v2: error events by route, status and code.
SELECT route, status, code, count(*) AS errors, CAST(sum(coalesce(dropped, 0)) AS BIGINT) AS dropped_events
FROM error
GROUP BY route, status, code
ORDER BY errors DESC
