-- name: idle_coins
-- description: Holds coins earned at least `days` days before as_of that are still unspent and
--   unexpired, and has redeemed nothing in those `days` days.
-- attribute: loyalty_has_idle_coins (boolean)
-- parameter: days (integer, default 60): Days the coins have sat unused.
SELECT profile.workspace_id, profile.lead_id
FROM loyalty.customer_profile AS profile
WHERE profile.oldest_unspent_coins_earned_at <= %(as_of)s - make_interval(days => %(days)s)
  AND (profile.last_redeemed_at IS NULL
       OR profile.last_redeemed_at < %(as_of)s - make_interval(days => %(days)s))
