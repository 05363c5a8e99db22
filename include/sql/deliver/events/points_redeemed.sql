-- Points Redeemed: every successful coin debit of type redeem, with the coupon it bought.
SELECT ledger.workspace_id,
       ledger.wallettransaction_id::text AS source_id,
       ledger.lead_id,
       ledger.created_at AS occurred_at,
       ledger.amount,
       ledger.balance_after,
       ledger.amount * %(coin_value)s AS points_value,
       file.currency_code AS currency,
       coupon.offer_name,
       coupon.code
FROM loyalty.wallet_ledger AS ledger
JOIN sync.export_file AS file ON file.export_file_id = ledger._export_file_id
LEFT JOIN nector.coupons AS coupon
       ON coupon.workspace_id = ledger.workspace_id AND coupon.coupon_id = ledger.coupon_id
WHERE ledger.operation = 'dr'
  AND ledger.type = 'redeem'
