-- The remainder at %(as_of)s of every successful credit that has not expired by then. All debits of a
-- lead (redemptions, expiry, reversals, adjustments) use up its credits in expiry order, soonest
-- first, then by earning time. A credit without expire_at expires %(coin_expiry_days)s days after it
-- was earned, or never when that is 0. Test accounts are left out (they have no ledger total).
--
-- The expired credits come first in that order, so the debits left for the open credits are the
-- lead's debits minus its expired credits (loyalty.ledger_total), and only the open credits need
-- sorting: an open credit keeps what the running sum of the open credits up to it exceeds that by.
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
       -- Only the one credit a lead's debits end in needs arithmetic on numeric.
       (CASE WHEN credit.open_cents_up_to_here - total.debits_left_cents >= credit.amount_cents THEN credit.amount
             WHEN credit.open_cents_up_to_here - total.debits_left_cents <= 0 THEN 0
             ELSE (credit.open_cents_up_to_here - total.debits_left_cents)::bigint / 100.0
        END)::numeric(14,2) AS remaining,
       %(as_of)s::timestamptz AS as_of
FROM (
    SELECT open.*,
           sum(open.amount_cents) OVER (PARTITION BY open.lead_id, open.workspace_id
                                        ORDER BY open.expire_at NULLS LAST, open.earned_at, open.wallettransaction_id
                                        -- ROWS, not the default RANGE: the order is unique anyway, and
                                        -- ROWS does not compare every row with its neighbours for ties.
                                        ROWS BETWEEN UNBOUNDED PRECEDING AND CURRENT ROW)
               AS open_cents_up_to_here
    FROM (
        SELECT t.workspace_id,
               t.wallettransaction_id,
               t.lead_id,
               t.type AS credit_type,
               t.created_at AS earned_at,
               expiry.expire_at,
               t.expire_at IS NOT NULL AS expire_at_exported,
               t.amount,
               -- Whole cents as float8, which represents whole numbers exactly up to 2^53, far above
               -- any lead's total. Its running sum has no numeric step per row, unlike sum(bigint).
               (t.amount * 100)::float8 AS amount_cents
        FROM nector.wallet_transactions AS t
        CROSS JOIN LATERAL (
            SELECT CASE WHEN t.expire_at IS NOT NULL THEN t.expire_at
                        WHEN %(coin_expiry_days)s > 0 THEN t.created_at + make_interval(days => %(coin_expiry_days)s)
                   END AS expire_at
        ) AS expiry
        WHERE t.operation = 'cr'
          -- Not coalesce(status, 'success') = 'success': the planner cannot estimate that.
          AND (t.status = 'success' OR t.status IS NULL)
          AND t.created_at < %(as_of)s
          AND (expiry.expire_at IS NULL OR expiry.expire_at > %(as_of)s)
    ) AS open
) AS credit
-- Joined after the running sums, so the join does not widen the rows being sorted.
JOIN (SELECT ledger.lead_id,
             ledger.workspace_id,
             ((ledger.coins_debited - ledger.coins_in_expired_credits) * 100)::float8 AS debits_left_cents
      FROM loyalty.ledger_total AS ledger) AS total
  ON total.lead_id = credit.lead_id AND total.workspace_id = credit.workspace_id
