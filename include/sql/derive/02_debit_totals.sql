-- Per-lead sums of the successful debits before %(as_of)s, test accounts left out. The credit lots
-- and the profile read them, so the debits are aggregated once; the credit sums come from the credit
-- lots. Amounts have two decimals, so the sums run on whole cents (bigint): summing numeric was
-- twice as slow on 10M rows.
SELECT totals.workspace_id,
       totals.lead_id,
       (totals.debited_cents / 100.0)::numeric(14,2)  AS coins_debited,
       (totals.redeemed_cents / 100.0)::numeric(14,2) AS coins_redeemed,
       (totals.expired_cents / 100.0)::numeric(14,2)  AS coins_expired,
       (totals.reverted_cents / 100.0)::numeric(14,2) AS coins_reverted,
       totals.last_debit_at,
       totals.last_redeemed_at,
       %(as_of)s::timestamptz                         AS as_of
FROM (
    SELECT t.workspace_id,
           t.lead_id,
           sum(cents.amount)                                                         AS debited_cents,
           coalesce(sum(cents.amount) FILTER (WHERE t.type = 'redeem'), 0)           AS redeemed_cents,
           coalesce(sum(cents.amount) FILTER (WHERE t.type = 'expire'), 0)           AS expired_cents,
           coalesce(sum(cents.amount) FILTER (WHERE t.type = 'revert'), 0)           AS reverted_cents,
           max(t.created_at)                                                         AS last_debit_at,
           max(t.created_at) FILTER (WHERE t.type = 'redeem')                        AS last_redeemed_at
    FROM nector.wallet_transactions AS t
    CROSS JOIN LATERAL (SELECT (t.amount * 100)::bigint AS amount) AS cents
    WHERE t.operation = 'dr'
      -- Not coalesce(status, 'success') = 'success': the planner cannot estimate that.
      AND (t.status = 'success' OR t.status IS NULL)
      AND t.created_at < %(as_of)s
    -- lead_id first: grouping on the uuid is cheaper than on the workspace text.
    GROUP BY t.lead_id, t.workspace_id
) AS totals
-- Test accounts are left out after grouping: an anti-join before it made the planner sort the
-- ledger a second time.
WHERE NOT EXISTS (SELECT 1 FROM loyalty.test_account AS a
                  WHERE a.workspace_id = totals.workspace_id AND a.lead_id = totals.lead_id)
