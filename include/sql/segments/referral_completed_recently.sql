-- name: referral_completed_recently
-- description: As a referrer, had a referral complete (the friend's qualifying order) within the
--   last `days` days before as_of.
-- attribute: loyalty_referral_completed_recently (boolean)
-- parameter: days (integer, default 7): Days before as_of that count as recent.
SELECT profile.workspace_id, profile.lead_id
FROM loyalty.customer_profile AS profile
WHERE profile.last_referral_completed_at >= %(as_of)s - make_interval(days => %(days)s)
