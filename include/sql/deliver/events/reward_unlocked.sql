-- Reward Unlocked: every coupon issued to a lead.
SELECT coupon.workspace_id,
       coupon.coupon_id::text AS source_id,
       coupon.lead_id,
       coupon.created_at AS occurred_at,
       coupon.code,
       coupon.offer_name,
       coupon.fiat_class,
       coupon.fiat_value,
       coupon.minimumcart_amount,
       coalesce(coupon.currency_code, file.currency_code) AS currency,
       coalesce(coupon.coins_spent, 0) AS coins_spent,
       coupon.source,
       coupon.expire_at
FROM nector.coupons AS coupon
JOIN sync.export_file AS file ON file.export_file_id = coupon._export_file_id
