-- name: coins_expiring_soon
-- description: Holds unspent coins that expire within `days` days after as_of. A credit expires at
--   its exported expire_at, else coin_expiry_days after it was earned (never when that setting is 0),
--   and debits use up the credits that expire first (loyalty.credit_lot). The profile's
--   coins_expiring_soon uses the same window.
-- attribute: loyalty_has_coins_expiring_soon (boolean)
-- parameter: days (integer, default 30): Days after as_of within which expiring coins count.
-- entry event: Coins Expiring Soon
-- event data: coins (number): Unspent coins that expire within the window.
-- event data: expires_at (date, from first_expiry_at): When the first of those coins expire.
-- event data: coin_balance (number): Coin balance at as_of.
SELECT lot.workspace_id,
       lot.lead_id,
       sum(lot.remaining) AS coins,
       min(lot.expire_at) AS first_expiry_at,
       min(profile.coin_balance) AS coin_balance
FROM loyalty.credit_lot AS lot
JOIN loyalty.customer_profile AS profile USING (workspace_id, lead_id)
WHERE lot.remaining > 0
  AND lot.expire_at > %(as_of)s
  AND lot.expire_at <= %(as_of)s + make_interval(days => %(days)s)
GROUP BY lot.workspace_id, lot.lead_id
