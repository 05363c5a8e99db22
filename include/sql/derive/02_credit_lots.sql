-- The remainder of every successful credit as of %(as_of)s. All debits of a lead (redemptions, expiry,
-- reversals, adjustments) consume its credits in expiry order, soonest first, then by earning time.
-- NOTE: this matches Nector's per-credit expiry when a lead's balance never goes negative and later
-- credits never expire before earlier ones; Nector does not publish its exact allocation rule.
DELETE FROM loyalty.credit_lot;

INSERT INTO loyalty.credit_lot (workspace_id, wallettransaction_id, lead_id, earned_at, expire_at, amount, remaining, as_of)
WITH ledger AS (
    SELECT t.*
    FROM nector.wallet_transactions AS t
    WHERE coalesce(t.status, 'success') = 'success'
      AND t.created_at < %(as_of)s
      AND NOT EXISTS (SELECT 1 FROM loyalty.test_account AS a
                      WHERE a.workspace_id = t.workspace_id AND a.lead_id = t.lead_id)
),
debited AS (
    SELECT workspace_id, lead_id, sum(amount) AS total_debited
    FROM ledger
    WHERE operation = 'dr'
    GROUP BY workspace_id, lead_id
),
credits AS (
    SELECT workspace_id, wallettransaction_id, lead_id, created_at, expire_at, amount,
           sum(amount) OVER (PARTITION BY workspace_id, lead_id
                             ORDER BY expire_at NULLS LAST, created_at, wallettransaction_id) AS credited_up_to_here
    FROM ledger
    WHERE operation = 'cr'
)
SELECT c.workspace_id,
       c.wallettransaction_id,
       c.lead_id,
       c.created_at,
       c.expire_at,
       c.amount,
       least(c.amount, greatest(0, c.credited_up_to_here - coalesce(d.total_debited, 0))),
       %(as_of)s
FROM credits AS c
LEFT JOIN debited AS d USING (workspace_id, lead_id);
