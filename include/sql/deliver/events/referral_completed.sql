-- Referral Completed: every completed referral, sent to the referrer, with their running count.
SELECT referral.workspace_id,
       referral.referral_id::text AS source_id,
       referral.referred_by_lead_id AS lead_id,
       referral.completed_at AS occurred_at,
       referral.referrer_reward_type,
       referral.referrer_reward_value,
       referral.referral_code,
       row_number() OVER (PARTITION BY referral.workspace_id, referral.referred_by_lead_id
                          ORDER BY referral.completed_at, referral.referral_id) AS completed_referrals
FROM nector.referrals AS referral
WHERE referral.status = 'completed'
  AND referral.completed_at IS NOT NULL
