-- daily_outcomes v1: what users did with what they were shown, by variant and release.
WITH shown AS (
    SELECT variant, release, count(*) AS impressions, count(DISTINCT item_id) AS items_shown
    FROM impression GROUP BY GROUPING SETS ((variant, release), ())
), clicked AS (
    SELECT variant, release, count(*) AS clicks
    FROM click GROUP BY GROUPING SETS ((variant, release), ())
), engaged AS (
    SELECT variant, release,
           count(*) FILTER (WHERE kind = 'like')  AS likes,
           count(*) FILTER (WHERE kind = 'share') AS shares,
           count(*) FILTER (WHERE kind = 'skip')  AS skips,
           count(*) FILTER (WHERE kind = 'watch') AS watches,
           coalesce(sum(value) FILTER (WHERE kind = 'watch'), 0)::DOUBLE AS watched_fraction_sum
    FROM engagement GROUP BY GROUPING SETS ((variant, release), ())
), keys AS (
    SELECT variant, release FROM shown UNION SELECT variant, release FROM clicked
    UNION SELECT variant, release FROM engaged
)
SELECT k.variant, k.release,
       coalesce(s.impressions, 0) AS impressions, coalesce(c.clicks, 0) AS clicks,
       coalesce(e.likes, 0) AS likes, coalesce(e.shares, 0) AS shares,
       coalesce(e.skips, 0) AS skips, coalesce(e.watches, 0) AS watches,
       coalesce(e.watched_fraction_sum, 0) AS watched_fraction_sum,
       coalesce(s.items_shown, 0) AS items_shown
FROM keys k
LEFT JOIN shown s ON s.variant IS NOT DISTINCT FROM k.variant
                 AND s.release IS NOT DISTINCT FROM k.release
LEFT JOIN clicked c ON c.variant IS NOT DISTINCT FROM k.variant
                   AND c.release IS NOT DISTINCT FROM k.release
LEFT JOIN engaged e ON e.variant IS NOT DISTINCT FROM k.variant
                   AND e.release IS NOT DISTINCT FROM k.release
ORDER BY k.variant NULLS FIRST, k.release NULLS FIRST
