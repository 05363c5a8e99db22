-- Points Earned: every successful coin credit of type reward, with the balance right after it.
SELECT ledger.workspace_id,
       ledger.wallettransaction_id::text AS source_id,
       ledger.lead_id,
       ledger.created_at AS occurred_at,
       ledger.amount,
       ledger.balance_after,
       ledger.amount * %(coin_value)s AS points_value,
       file.currency_code AS currency,
       ledger.title,
       ledger.reference_order_id,
       ledger.expire_at
FROM loyalty.wallet_ledger AS ledger
JOIN sync.export_file AS file ON file.export_file_id = ledger._export_file_id
WHERE ledger.operation = 'cr'
  AND ledger.type = 'reward'
