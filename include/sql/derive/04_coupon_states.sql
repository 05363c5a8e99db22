-- Every coupon issued before %(as_of)s with its state at %(as_of)s, test accounts left out. A coupon
-- used at or after %(as_of)s was still open then.
SELECT coupon.workspace_id,
       coupon.coupon_id,
       coupon.lead_id,
       coupon.source,
       coupon.offer_name,
       coupon.code,
       coupon.created_at AS issued_at,
       coupon.expire_at,
       CASE WHEN coupon.used_at < %(as_of)s THEN coupon.used_at END AS used_at,
       CASE WHEN coupon.used_at < %(as_of)s OR (coupon.used_at IS NULL AND coupon.status = 'used') THEN 'used'
            WHEN coupon.expire_at <= %(as_of)s THEN 'expired'
            ELSE 'open'
       END AS state,
       %(as_of)s::timestamptz AS as_of
FROM nector.coupons AS coupon
WHERE coupon.created_at < %(as_of)s
  AND NOT EXISTS (SELECT 1 FROM loyalty.test_account AS a
                  WHERE a.workspace_id = coupon.workspace_id AND a.lead_id = coupon.lead_id)
