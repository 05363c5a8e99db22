-- Profiles and the members of each segment from the latest run, in segment file order, with the
-- entries and exits of run day %(as_of_date)s, then the leads without a customer id and the test
-- accounts. For the run report.
-- One scan of the profile counts both the profiles and those without a customer id.
WITH profile AS (
    SELECT count(*) AS profiles, count(*) FILTER (WHERE user_id IS NULL) AS without_customer_id
    FROM loyalty.customer_profile
)
SELECT 'profiles' AS segment, profiles AS customers, NULL::bigint AS entered, NULL::bigint AS exited, 0 AS position
FROM profile
UNION ALL
SELECT segment.segment,
       (SELECT count(*) FROM loyalty.segment_member AS member WHERE member.segment = segment.segment),
       (SELECT sum(day.entered)::bigint FROM loyalty.segment_day AS day
        WHERE day.segment = segment.segment AND day.as_of_date = %(as_of_date)s),
       (SELECT sum(day.exited)::bigint FROM loyalty.segment_day AS day
        WHERE day.segment = segment.segment AND day.as_of_date = %(as_of_date)s),
       segment.position
FROM loyalty.segment AS segment
UNION ALL
SELECT 'without_customer_id', without_customer_id, NULL, NULL, 100000
FROM profile
UNION ALL
SELECT 'test_accounts', count(*), NULL, NULL, 100001
FROM loyalty.test_account
ORDER BY position
