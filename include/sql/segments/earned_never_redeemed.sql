-- name: earned_never_redeemed
-- description: Earned reward coins, not all of them reversed by refunds, and never redeemed any:
--   no `redeem` debit and no coupon bought with coins before as_of. Expiry and reversals are not
--   redemptions.
-- attribute: loyalty_earned_never_redeemed (boolean)
SELECT profile.workspace_id, profile.lead_id
FROM loyalty.customer_profile AS profile
WHERE profile.lifetime_coins_earned - profile.lifetime_coins_reverted > 0
  AND profile.lifetime_coins_redeemed = 0
  AND profile.redeemed_coupon_count = 0
