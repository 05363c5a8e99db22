-- The successful ledger rows with each lead's balance right after every transaction, for analysts
-- and for the Points Earned and Points Redeemed events.
CREATE VIEW loyalty.wallet_ledger AS
SELECT t.workspace_id,
       t.wallettransaction_id,
       t.lead_id,
       t.customer_id,
       t.operation,
       t.type,
       t.amount,
       CASE WHEN t.operation = 'cr' THEN t.amount ELSE -t.amount END AS signed_amount,
       sum(CASE WHEN t.operation = 'cr' THEN t.amount ELSE -t.amount END)
           OVER (PARTITION BY t.workspace_id, t.lead_id ORDER BY t.created_at, t.wallettransaction_id) AS balance_after,
       t.title,
       t.description,
       t.reference_order_id,
       t.coupon_id,
       t.expire_at,
       t.created_at,
       t._export_file_id
FROM nector.wallet_transactions AS t
WHERE coalesce(t.status, 'success') = 'success';

COMMENT ON VIEW loyalty.wallet_ledger IS 'Successful coin transactions with the running balance per lead; pending and failed ones are left out.';
COMMENT ON COLUMN loyalty.wallet_ledger.signed_amount IS 'amount, negative for debits.';
COMMENT ON COLUMN loyalty.wallet_ledger.balance_after IS 'Coin balance of the lead right after this transaction.';
