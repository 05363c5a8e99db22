-- name: coins_expiring_soon
-- description: Holds unspent coins that expire within `days` days after as_of. A credit expires at
--   its exported expire_at, else coin_expiry_days after it was earned (never when that setting is 0),
--   and debits use up the credits that expire first (loyalty.credit_lot). The profile sums those coins
--   into coins_expiring_soon with this segment's `days`, so the segment and the
--   loyalty_coins_expiring_soon attribute agree.
-- attribute: loyalty_has_coins_expiring_soon (boolean)
-- parameter: days (integer, default 30): Days after as_of within which expiring coins count.
-- entry event: Coins Expiring Soon
-- event data: coins (number, from coins_expiring_soon): Unspent coins that expire within the window.
-- event data: expires_at (date, from next_coin_expiry_at): When the first of those coins expire.
-- event data: coin_balance (number): Coin balance at as_of.
SELECT profile.workspace_id,
       profile.lead_id,
       profile.coins_expiring_soon,
       profile.next_coin_expiry_at,
       profile.coin_balance
FROM loyalty.customer_profile AS profile
WHERE profile.coins_expiring_soon > 0
