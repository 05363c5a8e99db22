-- name: tier_upgraded_recently
-- description: Moved to a higher-ranked VIP tier within the last `days` days before as_of, with no
--   downgrade after that upgrade.
-- attribute: loyalty_tier_upgraded_recently (boolean)
-- parameter: days (integer, default 7): Days before as_of that count as recent.
SELECT profile.workspace_id, profile.lead_id
FROM loyalty.customer_profile AS profile
WHERE profile.last_tier_upgrade_at >= %(as_of)s - make_interval(days => %(days)s)
  AND (profile.last_tier_downgrade_at IS NULL OR profile.last_tier_downgrade_at < profile.last_tier_upgrade_at)
