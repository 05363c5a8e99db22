-- name: unused_coupon
-- description: Holds a coupon (an unlocked reward) issued before as_of that is neither used nor
--   expired at as_of.
-- attribute: loyalty_has_unused_coupon (boolean)
SELECT profile.workspace_id, profile.lead_id
FROM loyalty.customer_profile AS profile
WHERE profile.unused_coupon_count > 0
