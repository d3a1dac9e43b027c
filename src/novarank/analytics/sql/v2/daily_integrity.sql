-- daily_integrity v2: duplicates, orphans and late arrivals per event type.
-- Views *_raw hold every row read; the unsuffixed views keep one row per event_id.
WITH requests AS (SELECT DISTINCT request_id FROM request),
     rankings AS (SELECT DISTINCT request_id FROM ranking),
     counts AS (
        SELECT 'request' AS type, (SELECT count(*) FROM request_raw) AS raw_rows,
               (SELECT count(*) FROM request) AS events
        UNION ALL SELECT 'ranking', (SELECT count(*) FROM ranking_raw), (SELECT count(*) FROM ranking)
        UNION ALL SELECT 'impression', (SELECT count(*) FROM impression_raw),
                         (SELECT count(*) FROM impression)
        UNION ALL SELECT 'click', (SELECT count(*) FROM click_raw), (SELECT count(*) FROM click)
        UNION ALL SELECT 'engagement', (SELECT count(*) FROM engagement_raw),
                         (SELECT count(*) FROM engagement)
        UNION ALL SELECT 'error', (SELECT count(*) FROM error_raw), (SELECT count(*) FROM error)
     ),
     -- an orphan has no request and ranking of its own: an anti-join by LEFT JOIN (the
     -- distinct ids add no rows), so a NULL request_id is an orphan and a NULL among the
     -- requests matches nothing
     orphans AS (
        SELECT 'impression' AS type,
               count(*) FILTER (WHERE q.request_id IS NULL OR r.request_id IS NULL) AS orphans
        FROM impression i
        LEFT JOIN requests q ON q.request_id = i.request_id
        LEFT JOIN rankings r ON r.request_id = i.request_id
        UNION ALL
        SELECT 'click',
               count(*) FILTER (WHERE q.request_id IS NULL OR r.request_id IS NULL)
        FROM click c
        LEFT JOIN requests q ON q.request_id = c.request_id
        LEFT JOIN rankings r ON r.request_id = c.request_id
     ),
     late AS (
        SELECT 'request' AS type, count(*) FILTER (WHERE received_ms - ts > 3600000) AS late
        FROM request
        UNION ALL SELECT 'impression', count(*) FILTER (WHERE received_ms - ts > 3600000)
        FROM impression
        UNION ALL SELECT 'click', count(*) FILTER (WHERE received_ms - ts > 3600000) FROM click
        UNION ALL SELECT 'engagement', count(*) FILTER (WHERE received_ms - ts > 3600000)
        FROM engagement
     )
SELECT c.type, c.raw_rows, c.events, c.raw_rows - c.events AS duplicates,
       coalesce(o.orphans, 0) AS orphans, coalesce(l.late, 0) AS late
FROM counts c LEFT JOIN orphans o USING (type) LEFT JOIN late l USING (type)
ORDER BY c.type
