-- The remainder of every successful credit as of %(as_of)s. All debits of a lead (redemptions, expiry,
-- reversals, adjustments) use up its credits in expiry order, soonest first, then by earning time. A
-- credit without expire_at expires %(coin_expiry_days)s days after it was earned, or never when that
-- is 0. Test accounts are left out.
-- NOTE: this matches Nector's per-credit expiry when a lead's balance never goes negative and later
-- credits never expire before earlier ones; Nector does not publish its exact allocation rule.
SELECT credit.workspace_id,
       credit.wallettransaction_id,
       credit.lead_id,
       credit.credit_type,
       credit.earned_at,
       credit.expire_at,
       CASE WHEN credit.expire_at_exported THEN 'export'
            WHEN credit.expire_at IS NOT NULL THEN 'coin_expiry_days'
       END AS expiry_source,
       credit.amount,
       -- Only the one lot a lead's debits end in needs arithmetic on numeric.
       (CASE WHEN credit.credited_cents_up_to_here - credit.debited_cents >= credit.amount_cents THEN credit.amount
             WHEN credit.credited_cents_up_to_here - credit.debited_cents <= 0 THEN 0
             ELSE (credit.credited_cents_up_to_here - credit.debited_cents)::bigint / 100.0
        END)::numeric(14,2) AS remaining,
       %(as_of)s::timestamptz AS as_of
FROM (
    SELECT expiring.*,
           sum(expiring.amount_cents) OVER (PARTITION BY expiring.lead_id, expiring.workspace_id
                                            ORDER BY expiring.expire_at NULLS LAST, expiring.earned_at,
                                                     expiring.wallettransaction_id
                                            -- ROWS, not the default RANGE: the order is unique anyway, and
                                            -- ROWS does not compare every row with its neighbours for ties.
                                            ROWS BETWEEN UNBOUNDED PRECEDING AND CURRENT ROW)
               AS credited_cents_up_to_here
    FROM (
        SELECT t.workspace_id,
               t.wallettransaction_id,
               t.lead_id,
               t.type AS credit_type,
               t.created_at AS earned_at,
               CASE WHEN t.expire_at IS NOT NULL THEN t.expire_at
                    WHEN %(coin_expiry_days)s > 0 THEN t.created_at + make_interval(days => %(coin_expiry_days)s)
               END AS expire_at,
               t.expire_at IS NOT NULL AS expire_at_exported,
               t.amount,
               -- Whole cents as float8, which holds whole numbers exactly up to 2^53, far above any
               -- lead's total. Its running sum has no numeric step per row, unlike sum(bigint).
               (t.amount * 100)::float8 AS amount_cents,
               coalesce((total.coins_debited * 100)::float8, 0) AS debited_cents
        FROM nector.wallet_transactions AS t
        LEFT JOIN loyalty.debit_total AS total
               ON total.lead_id = t.lead_id AND total.workspace_id = t.workspace_id
        WHERE t.operation = 'cr'
          AND NOT EXISTS (SELECT 1 FROM loyalty.test_account AS a
                          WHERE a.workspace_id = t.workspace_id AND a.lead_id = t.lead_id)
          -- Not coalesce(status, 'success') = 'success': the planner cannot estimate that.
          AND (t.status = 'success' OR t.status IS NULL)
          AND t.created_at < %(as_of)s
    ) AS expiring
) AS credit
