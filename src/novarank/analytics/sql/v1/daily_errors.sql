-- daily_errors v1: error events by route, status and code.
SELECT route, status, code, count(*) AS errors, sum(coalesce(dropped, 0))::BIGINT AS dropped_events
FROM error
GROUP BY route, status, code
ORDER BY errors DESC
