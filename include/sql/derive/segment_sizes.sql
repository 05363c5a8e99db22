-- Customers in each segment of the profile just built, for the run report.
SELECT count(*)                                              AS profiles,
       count(*) FILTER (WHERE earned_never_redeemed)         AS earned_never_redeemed,
       count(*) FILTER (WHERE has_unused_coupon)             AS has_unused_coupon,
       count(*) FILTER (WHERE has_coins_expiring_soon)       AS has_coins_expiring_soon,
       count(*) FILTER (WHERE completed_referral_recently)   AS completed_referral_recently,
       count(*) FILTER (WHERE reviewed_recently)             AS reviewed_recently,
       count(*) FILTER (WHERE tier_upgraded_recently)        AS tier_upgraded_recently,
       count(*) FILTER (WHERE user_id IS NULL)               AS without_customer_id,
       (SELECT count(*) FROM loyalty.test_account)           AS test_accounts
FROM loyalty.customer_profile
