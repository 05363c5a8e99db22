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
-- The open credit lots that still hold coins. Their sums run on whole cents (bigint): numeric sums of
-- millions of lots spilled to disk.
lot_totals AS (
    SELECT lot.lead_id,
           lot.workspace_id,
           sum((lot.remaining * 100)::bigint) FILTER (
               WHERE lot.expire_at <= %(as_of)s + make_interval(days => %(expiring_within_days)s)) / 100.0
                                                                        AS coins_expiring_soon,
           min(lot.expire_at)                                           AS next_coin_expiry_at,
           min(lot.earned_at)                                           AS oldest_unspent_at
    FROM loyalty.credit_lot AS lot
    WHERE lot.remaining > 0
    GROUP BY lot.lead_id, lot.workspace_id
),
-- Coupons, completed referrals (as the referrer) and reviews, aggregated in one pass, so the profile
-- joins one table of per-lead totals instead of three.
engagement AS (
    SELECT fact.lead_id,
           fact.workspace_id,
           count(*) FILTER (WHERE fact.kind = 'coupon' AND fact.state = 'open')               AS unused_coupon_count,
           min(fact.expire_at) FILTER (WHERE fact.kind = 'coupon' AND fact.state = 'open')    AS next_coupon_expiry_at,
           count(*) FILTER (WHERE fact.kind = 'coupon' AND fact.coupon_source = 'redeem')    AS redeemed_coupon_count,
           max(fact.happened_at) FILTER (WHERE fact.kind = 'coupon')                          AS last_coupon_at,
           count(*) FILTER (WHERE fact.kind = 'referral')                                     AS completed_referral_count,
           max(fact.happened_at) FILTER (WHERE fact.kind = 'referral')                        AS last_referral_completed_at,
           count(*) FILTER (WHERE fact.kind = 'review')                                       AS review_count,
           max(fact.happened_at) FILTER (WHERE fact.kind = 'review')                          AS last_review_at
    FROM (
        SELECT 'coupon' AS kind, coupon.lead_id, coupon.workspace_id, coupon.issued_at AS happened_at,
               coupon.expire_at, coupon.state, coupon.source AS coupon_source
        FROM loyalty.coupon_state AS coupon
        UNION ALL
        SELECT 'referral', referral.referrer_lead_id, referral.workspace_id, referral.completed_at, NULL, NULL, NULL
        FROM loyalty.referral_state AS referral
        WHERE referral.state = 'completed'
        UNION ALL
        SELECT 'review', review.lead_id, review.workspace_id, review.created_at, NULL, NULL, NULL
        FROM nector.reviews AS review
        WHERE review.created_at < %(as_of)s
    ) AS fact
    GROUP BY fact.lead_id, fact.workspace_id
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
       (coalesce(lt.coins_credited, 0) - coalesce(lt.coins_debited, 0))::numeric(14,2) AS coin_balance,
       coalesce(lt.coins_earned, 0)::numeric(14,2)               AS lifetime_coins_earned,
       coalesce(lt.coins_redeemed, 0)::numeric(14,2)             AS lifetime_coins_redeemed,
       coalesce(lt.coins_expired, 0)::numeric(14,2)              AS lifetime_coins_expired,
       coalesce(lt.coins_reverted, 0)::numeric(14,2)             AS lifetime_coins_reverted,
       coalesce(lot.coins_expiring_soon, 0)::numeric(14,2)       AS coins_expiring_soon,
       lot.next_coin_expiry_at,
       lot.oldest_unspent_at                                     AS oldest_unspent_coins_earned_at,
       coalesce(en.unused_coupon_count, 0)::integer              AS unused_coupon_count,
       en.next_coupon_expiry_at,
       coalesce(en.redeemed_coupon_count, 0)::integer            AS redeemed_coupon_count,
       coalesce(en.completed_referral_count, 0)::integer         AS completed_referral_count,
       en.last_referral_completed_at,
       coalesce(en.review_count, 0)::integer                     AS review_count,
       en.last_review_at,
       lt.last_redeemed_at,
       greatest(lt.last_credit_at, lt.last_debit_at, en.last_coupon_at, en.last_referral_completed_at,
                en.last_review_at)                               AS last_activity_at,
       tt.last_tier_upgrade_at,
       tt.last_tier_downgrade_at
FROM leads AS l
LEFT JOIN loyalty.ledger_total AS lt ON lt.lead_id = l.lead_id AND lt.workspace_id = l.workspace_id
LEFT JOIN lot_totals AS lot ON lot.lead_id = l.lead_id AND lot.workspace_id = l.workspace_id
LEFT JOIN engagement AS en ON en.lead_id = l.lead_id AND en.workspace_id = l.workspace_id
LEFT JOIN tier_totals AS tt ON tt.lead_id = l.lead_id AND tt.workspace_id = l.workspace_id
LEFT JOIN nector.tiers AS tier
       ON tier.workspace_id = l.workspace_id AND tier.tier_name = coalesce(tt.tier_as_of, l.tier)
