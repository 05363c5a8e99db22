-- name: lapsed_member
-- description: Has a positive coin balance but no loyalty activity (ledger transaction, coupon,
--   completed referral or review) within the last `days` days before as_of.
-- attribute: loyalty_lapsed (boolean)
-- parameter: days (integer, default 90): Days without activity after which a member has lapsed.
-- entry event: Loyalty Member Lapsed
-- event data: coin_balance (number): Coin balance at as_of.
-- event data: last_activity_at (date): The member's last loyalty activity.
SELECT profile.workspace_id, profile.lead_id, profile.coin_balance, profile.last_activity_at
FROM loyalty.customer_profile AS profile
WHERE profile.coin_balance > 0
  AND profile.last_activity_at < %(as_of)s - make_interval(days => %(days)s)
