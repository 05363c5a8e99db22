-- One profile per lead created before %(as_of)s, test accounts left out, with loyalty totals from the
-- shared tables built before it. Only activity before %(as_of)s counts, so re-running a past day over
-- the same data gives the same profile.
WITH leads AS (
    SELECT c.*
    FROM nector.customers AS c
    WHERE c.created_at < %(as_of)s
      AND NOT EXISTS (SELECT 1 FROM loyalty.test_account AS a
                      WHERE a.workspace_id = c.workspace_id AND a.lead_id = c.lead_id)
),
lot_totals AS (
    SELECT lot.lead_id,
           lot.workspace_id,
           sum(lot.remaining) FILTER (
               WHERE lot.expire_at > %(as_of)s
                 AND lot.expire_at <= %(as_of)s + make_interval(days => %(expiring_within_days)s)) AS coins_expiring_soon,
           min(lot.expire_at) FILTER (WHERE lot.expire_at > %(as_of)s)                          AS next_coin_expiry_at,
           min(lot.earned_at) FILTER (WHERE lot.expire_at IS NULL OR lot.expire_at > %(as_of)s) AS oldest_unspent_at
    FROM loyalty.credit_lot AS lot
    WHERE lot.remaining > 0
    GROUP BY lot.lead_id, lot.workspace_id
),
coupon_totals AS (
    SELECT coupon.lead_id,
           coupon.workspace_id,
           count(*) FILTER (WHERE coupon.state = 'open')              AS unused_coupon_count,
           min(coupon.expire_at) FILTER (WHERE coupon.state = 'open') AS next_coupon_expiry_at,
           count(*) FILTER (WHERE coupon.source = 'redeem')           AS redeemed_coupon_count,
           max(coupon.issued_at)                                      AS last_coupon_at
    FROM loyalty.coupon_state AS coupon
    GROUP BY coupon.lead_id, coupon.workspace_id
),
referral_totals AS (
    SELECT referral.referrer_lead_id AS lead_id,
           referral.workspace_id,
           count(*)                  AS completed_referral_count,
           max(referral.completed_at) AS last_referral_completed_at
    FROM loyalty.referral_state AS referral
    WHERE referral.state = 'completed'
    GROUP BY referral.referrer_lead_id, referral.workspace_id
),
review_totals AS (
    SELECT review.lead_id, review.workspace_id, count(*) AS review_count, max(review.created_at) AS last_review_at
    FROM nector.reviews AS review
    WHERE review.created_at < %(as_of)s
    GROUP BY review.lead_id, review.workspace_id
),
tier_totals AS (
    SELECT change.lead_id,
           change.workspace_id,
           (array_agg(change.new_tier ORDER BY change.changed_at DESC, change.event_id DESC))[1] AS tier_as_of,
           max(change.changed_at) FILTER (WHERE new_tier.rank > previous_tier.rank)             AS last_tier_upgrade_at,
           max(change.changed_at) FILTER (WHERE new_tier.rank < previous_tier.rank)             AS last_tier_downgrade_at
    FROM nector.tier_changes AS change
    LEFT JOIN nector.tiers AS new_tier
           ON new_tier.workspace_id = change.workspace_id AND new_tier.tier_name = change.new_tier
    LEFT JOIN nector.tiers AS previous_tier
           ON previous_tier.workspace_id = change.workspace_id AND previous_tier.tier_name = change.previous_tier
    WHERE change.changed_at < %(as_of)s
    GROUP BY change.lead_id, change.workspace_id
)
SELECT l.workspace_id,
       l.lead_id,
       l.customer_id,
       CASE WHEN %(user_id_source)s = 'customer_id' THEN l.customer_id ELSE l.platform_customer_id END AS user_id,
       %(as_of)s::timestamptz                                    AS as_of,
       l.name,
       l.email,
       l.mobile_e164,
       l.dob                                                     AS birth_date,
       coalesce(tt.tier_as_of, l.tier)                           AS tier,
       tier.rank                                                 AS tier_rank,
       coalesce(lt.coin_balance, 0)::numeric(14,2)               AS coin_balance,
       coalesce(lt.coins_earned, 0)::numeric(14,2)               AS lifetime_coins_earned,
       coalesce(lt.coins_redeemed, 0)::numeric(14,2)             AS lifetime_coins_redeemed,
       coalesce(lt.coins_expired, 0)::numeric(14,2)              AS lifetime_coins_expired,
       coalesce(lt.coins_reverted, 0)::numeric(14,2)             AS lifetime_coins_reverted,
       coalesce(lot.coins_expiring_soon, 0)::numeric(14,2)       AS coins_expiring_soon,
       lot.next_coin_expiry_at,
       lot.oldest_unspent_at                                     AS oldest_unspent_coins_earned_at,
       coalesce(ct.unused_coupon_count, 0)::integer              AS unused_coupon_count,
       ct.next_coupon_expiry_at,
       coalesce(ct.redeemed_coupon_count, 0)::integer            AS redeemed_coupon_count,
       coalesce(rt.completed_referral_count, 0)::integer         AS completed_referral_count,
       rt.last_referral_completed_at,
       coalesce(rv.review_count, 0)::integer                     AS review_count,
       rv.last_review_at,
       lt.last_redeemed_at,
       greatest(lt.last_ledger_at, ct.last_coupon_at, rt.last_referral_completed_at, rv.last_review_at)
                                                                 AS last_activity_at,
       tt.last_tier_upgrade_at,
       tt.last_tier_downgrade_at
FROM leads AS l
LEFT JOIN loyalty.ledger_total AS lt ON lt.lead_id = l.lead_id AND lt.workspace_id = l.workspace_id
LEFT JOIN lot_totals AS lot ON lot.lead_id = l.lead_id AND lot.workspace_id = l.workspace_id
LEFT JOIN coupon_totals AS ct ON ct.lead_id = l.lead_id AND ct.workspace_id = l.workspace_id
LEFT JOIN referral_totals AS rt ON rt.lead_id = l.lead_id AND rt.workspace_id = l.workspace_id
LEFT JOIN review_totals AS rv ON rv.lead_id = l.lead_id AND rv.workspace_id = l.workspace_id
LEFT JOIN tier_totals AS tt ON tt.lead_id = l.lead_id AND tt.workspace_id = l.workspace_id
LEFT JOIN nector.tiers AS tier
       ON tier.workspace_id = l.workspace_id AND tier.tier_name = coalesce(tt.tier_as_of, l.tier)
