-- One profile per lead with loyalty totals and segment flags, from activity before %(as_of)s only, so
-- re-running a past day over the same data gives the same result. Windows count back from %(as_of)s.
DELETE FROM loyalty.customer_profile;

INSERT INTO loyalty.customer_profile (
    workspace_id, lead_id, customer_id, user_id, as_of, name, email, mobile_e164, tier, tier_rank,
    coin_balance, lifetime_coins_earned, lifetime_coins_redeemed, lifetime_coins_expired,
    coins_expiring_soon, next_coin_expiry_at, unused_coupon_count, next_coupon_expiry_at,
    completed_referral_count, review_count, last_activity_at, last_tier_upgrade_at,
    earned_never_redeemed, has_unused_coupon, has_coins_expiring_soon,
    completed_referral_recently, reviewed_recently, tier_upgraded_recently
)
WITH leads AS (
    SELECT c.*
    FROM nector.customers AS c
    WHERE c.created_at < %(as_of)s
      AND NOT EXISTS (SELECT 1 FROM loyalty.test_account AS a
                      WHERE a.workspace_id = c.workspace_id AND a.lead_id = c.lead_id)
),
ledger_totals AS (
    SELECT workspace_id, lead_id,
           sum(CASE WHEN operation = 'cr' THEN amount ELSE -amount END) AS coin_balance,
           coalesce(sum(amount) FILTER (WHERE operation = 'cr' AND type = 'reward'), 0) AS coins_earned,
           -- "Redeemed" means coins spent on a reward, not expiry or a reversal.
           coalesce(sum(amount) FILTER (WHERE operation = 'dr' AND type = 'redeem'), 0) AS coins_redeemed,
           coalesce(sum(amount) FILTER (WHERE operation = 'dr' AND type = 'expire'), 0) AS coins_expired,
           max(created_at) AS last_ledger_at
    FROM nector.wallet_transactions
    WHERE coalesce(status, 'success') = 'success'
      AND created_at < %(as_of)s
    GROUP BY workspace_id, lead_id
),
expiring_lots AS (
    SELECT workspace_id, lead_id,
           coalesce(sum(remaining) FILTER (
               WHERE expire_at > %(as_of)s
                 AND expire_at <= %(as_of)s + make_interval(days => %(coins_expiring_within_days)s)), 0)
               AS coins_expiring_soon,
           min(expire_at) FILTER (WHERE remaining > 0 AND expire_at > %(as_of)s) AS next_coin_expiry_at
    FROM loyalty.credit_lot
    GROUP BY workspace_id, lead_id
),
coupon_states AS (
    SELECT workspace_id, lead_id, created_at, expire_at, source,
           -- Open at as_of: issued before it, not used by then, not expired by then.
           (used_at IS NULL AND coalesce(status, 'issued') <> 'used' OR used_at >= %(as_of)s)
               AND (expire_at IS NULL OR expire_at > %(as_of)s) AS is_open
    FROM nector.coupons
    WHERE created_at < %(as_of)s
),
coupon_totals AS (
    SELECT workspace_id, lead_id,
           count(*) FILTER (WHERE is_open) AS unused_coupon_count,
           min(expire_at) FILTER (WHERE is_open) AS next_coupon_expiry_at,
           bool_or(source = 'redeem') AS has_redeemed_coupon,
           max(created_at) AS last_coupon_at
    FROM coupon_states
    GROUP BY workspace_id, lead_id
),
referral_totals AS (
    SELECT workspace_id, referred_by_lead_id AS lead_id,
           count(*) AS completed_referral_count,
           max(completed_at) AS last_completed_at
    FROM nector.referrals
    WHERE status = 'completed'
      AND completed_at < %(as_of)s
    GROUP BY workspace_id, referred_by_lead_id
),
review_totals AS (
    SELECT workspace_id, lead_id, count(*) AS review_count, max(created_at) AS last_review_at
    FROM nector.reviews
    WHERE created_at < %(as_of)s
    GROUP BY workspace_id, lead_id
),
ranked_tier_changes AS (
    SELECT tc.workspace_id, tc.lead_id, tc.new_tier, tc.changed_at,
           new_tier.rank > previous_tier.rank AS is_upgrade,
           row_number() OVER (PARTITION BY tc.workspace_id, tc.lead_id ORDER BY tc.changed_at DESC, tc.event_id DESC)
               AS recency
    FROM nector.tier_changes AS tc
    LEFT JOIN nector.tiers AS new_tier
           ON new_tier.workspace_id = tc.workspace_id AND new_tier.tier_name = tc.new_tier
    LEFT JOIN nector.tiers AS previous_tier
           ON previous_tier.workspace_id = tc.workspace_id AND previous_tier.tier_name = tc.previous_tier
    WHERE tc.changed_at < %(as_of)s
),
tier_totals AS (
    SELECT workspace_id, lead_id,
           max(new_tier) FILTER (WHERE recency = 1) AS tier_as_of,
           max(changed_at) FILTER (WHERE is_upgrade) AS last_tier_upgrade_at
    FROM ranked_tier_changes
    GROUP BY workspace_id, lead_id
)
SELECT l.workspace_id,
       l.lead_id,
       l.customer_id,
       CASE WHEN %(user_id_source)s = 'customer_id' THEN l.customer_id ELSE l.platform_customer_id END,
       %(as_of)s,
       l.name,
       l.email,
       l.mobile_e164,
       coalesce(tt.tier_as_of, l.tier),
       tier.rank,
       coalesce(lt.coin_balance, 0),
       coalesce(lt.coins_earned, 0),
       coalesce(lt.coins_redeemed, 0),
       coalesce(lt.coins_expired, 0),
       coalesce(el.coins_expiring_soon, 0),
       el.next_coin_expiry_at,
       coalesce(ct.unused_coupon_count, 0),
       ct.next_coupon_expiry_at,
       coalesce(rt.completed_referral_count, 0),
       coalesce(rv.review_count, 0),
       nullif(greatest(lt.last_ledger_at, ct.last_coupon_at, rt.last_completed_at, rv.last_review_at, '-infinity'),
              '-infinity'),
       tt.last_tier_upgrade_at,
       coalesce(lt.coins_earned, 0) > 0 AND coalesce(lt.coins_redeemed, 0) = 0
           AND NOT coalesce(ct.has_redeemed_coupon, false),
       coalesce(ct.unused_coupon_count, 0) > 0,
       coalesce(el.coins_expiring_soon, 0) > 0,
       coalesce(rt.last_completed_at >= %(as_of)s - make_interval(days => %(referral_window_days)s), false),
       coalesce(rv.last_review_at >= %(as_of)s - make_interval(days => %(review_window_days)s), false),
       coalesce(tt.last_tier_upgrade_at >= %(as_of)s - make_interval(days => %(tier_upgrade_window_days)s), false)
FROM leads AS l
LEFT JOIN ledger_totals AS lt USING (workspace_id, lead_id)
LEFT JOIN expiring_lots AS el USING (workspace_id, lead_id)
LEFT JOIN coupon_totals AS ct USING (workspace_id, lead_id)
LEFT JOIN referral_totals AS rt USING (workspace_id, lead_id)
LEFT JOIN review_totals AS rv USING (workspace_id, lead_id)
LEFT JOIN tier_totals AS tt USING (workspace_id, lead_id)
LEFT JOIN nector.tiers AS tier
       ON tier.workspace_id = l.workspace_id AND tier.tier_name = coalesce(tt.tier_as_of, l.tier);
