-- name: milestone_crossed
-- description: Lifetime reward coins passed one of the `thresholds` within the last `days` days
--   before as_of: below the threshold when the window began, at or above it at as_of.
-- attribute: loyalty_milestone_crossed (boolean)
-- parameter: thresholds (number[], default [1000, 5000, 10000, 25000]): Lifetime reward coins that are milestones.
-- parameter: days (integer, default 7): Days before as_of in which the threshold was passed.
-- entry event: Loyalty Milestone Reached
-- event data: milestone (number): Highest threshold passed within the window.
-- event data: lifetime_coins (number, from lifetime_coins_earned): Reward coins earned, lifetime, at as_of.
WITH recent AS (
    -- The ledger, not the credit lots: a credit earned in the window may have expired already, and
    -- its coins still count towards the lifetime total.
    SELECT t.workspace_id, t.lead_id, sum(t.amount) AS earned_in_window
    FROM nector.wallet_transactions AS t
    WHERE t.operation = 'cr'
      AND t.type = 'reward'
      AND (t.status = 'success' OR t.status IS NULL)
      AND t.created_at >= %(as_of)s - make_interval(days => %(days)s)
      AND t.created_at < %(as_of)s
    GROUP BY t.workspace_id, t.lead_id
)
SELECT profile.workspace_id, profile.lead_id, profile.lifetime_coins_earned, crossed.milestone
FROM recent
JOIN loyalty.customer_profile AS profile USING (workspace_id, lead_id)
CROSS JOIN LATERAL (
    SELECT max(threshold) AS milestone
    FROM unnest(%(thresholds)s::numeric[]) AS threshold
    WHERE profile.lifetime_coins_earned - recent.earned_in_window < threshold
      AND threshold <= profile.lifetime_coins_earned
) AS crossed
WHERE crossed.milestone IS NOT NULL
