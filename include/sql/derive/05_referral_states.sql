-- Every referral started before %(as_of)s with its state at %(as_of)s. The export has no cancellation
-- time, so a cancelled referral counts as cancelled from its last update.
SELECT referral.workspace_id,
       referral.referral_id,
       referral.referred_by_lead_id AS referrer_lead_id,
       referral.referred_to_lead_id AS friend_lead_id,
       referral.referral_code,
       referral.created_at,
       CASE WHEN referral.status = 'completed' AND referral.completed_at < %(as_of)s THEN referral.completed_at END
           AS completed_at,
       CASE WHEN referral.status = 'completed' AND referral.completed_at < %(as_of)s THEN 'completed'
            WHEN referral.status = 'cancelled' AND referral.updated_at < %(as_of)s THEN 'cancelled'
            ELSE 'open'
       END AS state,
       %(as_of)s::timestamptz AS as_of
FROM nector.referrals AS referral
WHERE referral.created_at < %(as_of)s
