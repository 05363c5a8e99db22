-- The remainder of every successful credit as of %(as_of)s. All debits of a lead (redemptions, expiry,
-- reversals, adjustments) use up its credits in expiry order, soonest first, then by earning time. A
-- credit without expire_at expires %(coin_expiry_days)s days after it was earned, or never when that
-- is 0. Test accounts have no ledger_total row, so the join leaves them out. It comes before the
-- window, so each parallel worker probes the smaller ledger_total rather than hashing every credit.
-- The running sum is in whole cents (bigint), which is cheaper than a numeric sum.
-- NOTE: this matches Nector's per-credit expiry when a lead's balance never goes negative and later
-- credits never expire before earlier ones; Nector does not publish its exact allocation rule.
SELECT credit.workspace_id,
       credit.wallettransaction_id,
       credit.lead_id,
       credit.credit_type,
       credit.earned_at,
       credit.expire_at,
       credit.expiry_source,
       credit.amount,
       (least(credit.amount_cents, greatest(0, credit.credited_cents_up_to_here - credit.debited_cents)) / 100.0)
           ::numeric(14,2) AS remaining,
       %(as_of)s::timestamptz AS as_of
FROM (
    SELECT expiring.*,
           sum(expiring.amount_cents) OVER (PARTITION BY expiring.lead_id, expiring.workspace_id
                                            ORDER BY expiring.expire_at NULLS LAST, expiring.earned_at,
                                                     expiring.wallettransaction_id) AS credited_cents_up_to_here
    FROM (
        SELECT t.workspace_id,
               t.wallettransaction_id,
               t.lead_id,
               t.type AS credit_type,
               t.created_at AS earned_at,
               CASE WHEN t.expire_at IS NOT NULL THEN t.expire_at
                    WHEN %(coin_expiry_days)s > 0 THEN t.created_at + make_interval(days => %(coin_expiry_days)s)
               END AS expire_at,
               CASE WHEN t.expire_at IS NOT NULL THEN 'export'
                    WHEN %(coin_expiry_days)s > 0 THEN 'coin_expiry_days'
               END AS expiry_source,
               t.amount,
               (t.amount * 100)::bigint AS amount_cents,
               (total.coins_debited * 100)::bigint AS debited_cents
        FROM nector.wallet_transactions AS t
        JOIN loyalty.ledger_total AS total
          ON total.lead_id = t.lead_id AND total.workspace_id = t.workspace_id
        WHERE t.operation = 'cr'
          -- Not coalesce(status, 'success') = 'success': the planner cannot estimate that and took the
          -- credits for a few thousand rows.
          AND (t.status = 'success' OR t.status IS NULL)
          AND t.created_at < %(as_of)s
    ) AS expiring
) AS credit
