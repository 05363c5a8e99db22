-- Per-lead sums of the successful ledger before %(as_of)s, test accounts left out: one pass over the
-- ledger for the profile's totals and for the two sums the credit lots need (all debits, and the
-- credits already expired). A credit without expire_at expires %(coin_expiry_days)s days after it was
-- earned, or never when that is 0, as in the credit lots. Amounts have two decimals, so the sums run
-- on whole cents, as float8: summing numeric was twice as slow on 10M rows, and bigint sums keep a
-- 128-bit state that the parallel workers serialise for the leader (0.5 s more than float8 on the
-- benchmark data). A float8 represents whole numbers exactly up to 2^53, far above any lead's total,
-- and the cents become bigint again before the division by 100.
SELECT totals.workspace_id,
       totals.lead_id,
       (totals.credited_cents::bigint / 100.0)::numeric(14,2)       AS coins_credited,
       (totals.earned_cents::bigint / 100.0)::numeric(14,2)         AS coins_earned,
       (totals.expired_credit_cents::bigint / 100.0)::numeric(14,2) AS coins_in_expired_credits,
       (totals.debited_cents::bigint / 100.0)::numeric(14,2)        AS coins_debited,
       (totals.redeemed_cents::bigint / 100.0)::numeric(14,2)       AS coins_redeemed,
       (totals.expired_cents::bigint / 100.0)::numeric(14,2)        AS coins_expired,
       (totals.reverted_cents::bigint / 100.0)::numeric(14,2)       AS coins_reverted,
       totals.last_credit_at,
       totals.last_debit_at,
       totals.last_redeemed_at,
       %(as_of)s::timestamptz                                       AS as_of
FROM (
    SELECT t.workspace_id,
           t.lead_id,
           coalesce(sum(cents.amount) FILTER (WHERE t.operation = 'cr'), 0)                       AS credited_cents,
           coalesce(sum(cents.amount) FILTER (WHERE t.operation = 'cr' AND t.type = 'reward'), 0) AS earned_cents,
           coalesce(sum(cents.amount) FILTER (
               WHERE t.operation = 'cr'
                 AND coalesce(t.expire_at, CASE WHEN %(coin_expiry_days)s > 0
                                                THEN t.created_at + make_interval(days => %(coin_expiry_days)s)
                                           END) <= %(as_of)s), 0)                                 AS expired_credit_cents,
           coalesce(sum(cents.amount) FILTER (WHERE t.operation = 'dr'), 0)                       AS debited_cents,
           coalesce(sum(cents.amount) FILTER (WHERE t.operation = 'dr' AND t.type = 'redeem'), 0) AS redeemed_cents,
           coalesce(sum(cents.amount) FILTER (WHERE t.operation = 'dr' AND t.type = 'expire'), 0) AS expired_cents,
           coalesce(sum(cents.amount) FILTER (WHERE t.operation = 'dr' AND t.type = 'revert'), 0) AS reverted_cents,
           max(t.created_at) FILTER (WHERE t.operation = 'cr')                                    AS last_credit_at,
           max(t.created_at) FILTER (WHERE t.operation = 'dr')                                    AS last_debit_at,
           max(t.created_at) FILTER (WHERE t.operation = 'dr' AND t.type = 'redeem')              AS last_redeemed_at
    FROM nector.wallet_transactions AS t
    CROSS JOIN LATERAL (SELECT (t.amount * 100)::bigint::float8 AS amount) AS cents
    -- Not coalesce(status, 'success') = 'success': the planner cannot estimate that.
    WHERE (t.status = 'success' OR t.status IS NULL)
      AND t.created_at < %(as_of)s
    -- lead_id first: grouping on the uuid is cheaper than on the workspace text.
    GROUP BY t.lead_id, t.workspace_id
) AS totals
-- Test accounts are left out after grouping: an anti-join before it made the planner sort the
-- ledger a second time.
WHERE NOT EXISTS (SELECT 1 FROM loyalty.test_account AS a
                  WHERE a.workspace_id = totals.workspace_id AND a.lead_id = totals.lead_id)
