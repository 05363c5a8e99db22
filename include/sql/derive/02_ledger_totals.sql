-- Per-lead sums of the successful ledger before %(as_of)s, test accounts left out. The credit lots
-- and the profile read them, so the ledger is aggregated once.
SELECT t.workspace_id,
       t.lead_id,
       sum(CASE WHEN t.operation = 'cr' THEN t.amount ELSE -t.amount END)::numeric(14,2)           AS coin_balance,
       coalesce(sum(t.amount) FILTER (WHERE t.operation = 'dr'), 0)::numeric(14,2)                AS coins_debited,
       coalesce(sum(t.amount) FILTER (WHERE t.operation = 'cr' AND t.type = 'reward'), 0)::numeric(14,2) AS coins_earned,
       coalesce(sum(t.amount) FILTER (WHERE t.operation = 'dr' AND t.type = 'redeem'), 0)::numeric(14,2) AS coins_redeemed,
       coalesce(sum(t.amount) FILTER (WHERE t.operation = 'dr' AND t.type = 'expire'), 0)::numeric(14,2) AS coins_expired,
       coalesce(sum(t.amount) FILTER (WHERE t.operation = 'dr' AND t.type = 'revert'), 0)::numeric(14,2) AS coins_reverted,
       max(t.created_at)                                                                          AS last_ledger_at,
       max(t.created_at) FILTER (WHERE t.operation = 'dr' AND t.type = 'redeem')                  AS last_redeemed_at,
       %(as_of)s::timestamptz                                                                     AS as_of
FROM nector.wallet_transactions AS t
WHERE coalesce(t.status, 'success') = 'success'
  AND t.created_at < %(as_of)s
  AND NOT EXISTS (SELECT 1 FROM loyalty.test_account AS a
                  WHERE a.workspace_id = t.workspace_id AND a.lead_id = t.lead_id)
-- lead_id first: grouping on the uuid is cheaper than on the workspace text.
GROUP BY t.lead_id, t.workspace_id
