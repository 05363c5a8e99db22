-- The credit lots now hold only the credits that have not expired at `as_of`: every measure read from
-- them (coins expiring soon, the next expiry, the oldest unspent coins) looks at those alone, and
-- sorting only them roughly halves the lots a nightly run orders by lead and expiry. Debits use up
-- the expired credits first, so what remains of an open credit follows from two per-lead sums,
-- debits and expired credits, which loyalty.ledger_total now carries with the other ledger sums.

DROP TABLE loyalty.debit_total;

CREATE TABLE loyalty.ledger_total (
    workspace_id             text          NOT NULL,
    lead_id                  uuid          NOT NULL,
    coins_credited           numeric(14,2) NOT NULL,
    coins_earned             numeric(14,2) NOT NULL,
    coins_in_expired_credits numeric(14,2) NOT NULL,
    coins_debited            numeric(14,2) NOT NULL,
    coins_redeemed           numeric(14,2) NOT NULL,
    coins_expired            numeric(14,2) NOT NULL,
    coins_reverted           numeric(14,2) NOT NULL,
    last_credit_at           timestamptz,
    last_debit_at            timestamptz,
    last_redeemed_at         timestamptz,
    as_of                    timestamptz   NOT NULL
) PARTITION BY LIST (workspace_id);
COMMENT ON TABLE loyalty.ledger_total IS 'Per-lead sums of the successful ledger before `as_of`, test accounts left out: the input of the credit lots and the profile.';
COMMENT ON COLUMN loyalty.ledger_total.workspace_id IS 'Nector workspace (brand).';
COMMENT ON COLUMN loyalty.ledger_total.lead_id IS 'Nector lead.';
COMMENT ON COLUMN loyalty.ledger_total.coins_credited IS 'All credits.';
COMMENT ON COLUMN loyalty.ledger_total.coins_earned IS 'Credits of type `reward`.';
COMMENT ON COLUMN loyalty.ledger_total.coins_in_expired_credits IS 'Credits whose coins expired at or before `as_of` (the same expiry as loyalty.credit_lot.expire_at): debits use these up first.';
COMMENT ON COLUMN loyalty.ledger_total.coins_debited IS 'All debits: redemptions, expiry, reversals and adjustments.';
COMMENT ON COLUMN loyalty.ledger_total.coins_redeemed IS 'Debits of type `redeem`: coins spent on rewards.';
COMMENT ON COLUMN loyalty.ledger_total.coins_expired IS 'Debits of type `expire`.';
COMMENT ON COLUMN loyalty.ledger_total.coins_reverted IS 'Debits of type `revert`: coins taken back, for example after a refund.';
COMMENT ON COLUMN loyalty.ledger_total.last_credit_at IS 'Time of the lead''s latest credit.';
COMMENT ON COLUMN loyalty.ledger_total.last_debit_at IS 'Time of the lead''s latest debit.';
COMMENT ON COLUMN loyalty.ledger_total.last_redeemed_at IS 'Time of the lead''s latest `redeem` debit.';
COMMENT ON COLUMN loyalty.ledger_total.as_of IS 'End of the data interval the run computed: transactions at or after it are left out.';

COMMENT ON TABLE loyalty.credit_lot IS 'Every successful credit before `as_of` that has not expired at `as_of`, with what remains of it. All debits of a lead (redemptions, expiry, reversals, adjustments) use up its credits in expiry order, soonest first, then by earning time, so they use up the expired credits before these. Test accounts are left out.';
COMMENT ON VIEW analytics.credit_lot IS 'Every credit before `as_of` that has not expired at `as_of` (expire_at after `as_of` or NULL), with the coins that remain of it. Debits use up the credits that expire first, then the oldest; expired credits are not listed. Empty after a database crash until the next run.';
