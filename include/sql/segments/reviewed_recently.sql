-- name: reviewed_recently
-- description: Wrote a product review within the last `days` days before as_of.
-- attribute: loyalty_reviewed_recently (boolean)
-- parameter: days (integer, default 30): Days before as_of that count as recent.
SELECT profile.workspace_id, profile.lead_id
FROM loyalty.customer_profile AS profile
WHERE profile.last_review_at >= %(as_of)s - make_interval(days => %(days)s)
