-- name: referral_pending
-- description: Was referred by a friend within the last `days` days and has not placed the
--   qualifying order yet: the referral is open at as_of (neither completed nor cancelled).
-- attribute: loyalty_referral_pending (boolean)
-- parameter: days (integer, default 30): Days before as_of in which the referral must have started.
SELECT DISTINCT referral.workspace_id, referral.friend_lead_id AS lead_id
FROM loyalty.referral_state AS referral
WHERE referral.state = 'open'
  AND referral.friend_lead_id IS NOT NULL
  AND referral.created_at >= %(as_of)s - make_interval(days => %(days)s)
