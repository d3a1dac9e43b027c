-- daily_outcomes v2: what users did with what they were shown, by variant and release.
-- `level` is 'group' for a (variant, release) row and 'all' for the day's total; a NULL
-- variant or release is a real group (events that carried none), not the total.
WITH shown AS (
    SELECT grouping_id(variant, release) AS g, variant, release,
           count(*) AS impressions, count(DISTINCT item_id) AS items_shown
    FROM impression GROUP BY GROUPING SETS ((variant, release), ())
), clicked AS (
    SELECT grouping_id(variant, release) AS g, variant, release, count(*) AS clicks
    FROM click GROUP BY GROUPING SETS ((variant, release), ())
), engaged AS (
    SELECT grouping_id(variant, release) AS g, variant, release,
           count(*) FILTER (WHERE kind = 'like')  AS likes,
           count(*) FILTER (WHERE kind = 'share') AS shares,
           count(*) FILTER (WHERE kind = 'skip')  AS skips,
           count(*) FILTER (WHERE kind = 'watch') AS watches,
           CAST(coalesce(sum(value) FILTER (WHERE kind = 'watch'), 0) AS DOUBLE)
               AS watched_fraction_sum
    FROM engagement GROUP BY GROUPING SETS ((variant, release), ())
), keys AS (
    SELECT 0 AS g, variant, release FROM shown WHERE g = 0
    UNION SELECT 0, variant, release FROM clicked WHERE g = 0
    UNION SELECT 0, variant, release FROM engaged WHERE g = 0
    UNION SELECT 3, CAST(NULL AS STRING), CAST(NULL AS STRING)
)
SELECT CASE k.g WHEN 0 THEN 'group' ELSE 'all' END AS level, k.variant, k.release,
       coalesce(s.impressions, 0) AS impressions, coalesce(c.clicks, 0) AS clicks,
       coalesce(e.likes, 0) AS likes, coalesce(e.shares, 0) AS shares,
       coalesce(e.skips, 0) AS skips, coalesce(e.watches, 0) AS watches,
       coalesce(e.watched_fraction_sum, 0) AS watched_fraction_sum,
       coalesce(s.items_shown, 0) AS items_shown
FROM keys k
LEFT JOIN shown s ON s.g = k.g AND s.variant IS NOT DISTINCT FROM k.variant
                 AND s.release IS NOT DISTINCT FROM k.release
LEFT JOIN clicked c ON c.g = k.g AND c.variant IS NOT DISTINCT FROM k.variant
                   AND c.release IS NOT DISTINCT FROM k.release
LEFT JOIN engaged e ON e.g = k.g AND e.variant IS NOT DISTINCT FROM k.variant
                   AND e.release IS NOT DISTINCT FROM k.release
ORDER BY k.g DESC, k.variant NULLS FIRST, k.release NULLS FIRST
