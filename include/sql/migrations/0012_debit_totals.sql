-- Per-lead ledger sums now cover debits only: the credit sums come from loyalty.credit_lot, which the
-- profile aggregates anyway, so the derive stage reads the credits of the ledger once instead of
-- twice.

DROP TABLE loyalty.ledger_total;

CREATE TABLE loyalty.debit_total (
    workspace_id     text          NOT NULL,
    lead_id          uuid          NOT NULL,
    coins_debited    numeric(14,2) NOT NULL,
    coins_redeemed   numeric(14,2) NOT NULL,
    coins_expired    numeric(14,2) NOT NULL,
    coins_reverted   numeric(14,2) NOT NULL,
    last_debit_at    timestamptz   NOT NULL,
    last_redeemed_at timestamptz,
    as_of            timestamptz   NOT NULL
) PARTITION BY LIST (workspace_id);
COMMENT ON TABLE loyalty.debit_total IS 'Per-lead sums of the successful debits before `as_of`, test accounts left out: the input of the credit lots and the profile.';
COMMENT ON COLUMN loyalty.debit_total.workspace_id IS 'Nector workspace (brand).';
COMMENT ON COLUMN loyalty.debit_total.lead_id IS 'Nector lead.';
COMMENT ON COLUMN loyalty.debit_total.coins_debited IS 'All debits: redemptions, expiry, reversals and adjustments.';
COMMENT ON COLUMN loyalty.debit_total.coins_redeemed IS 'Debits of type `redeem`: coins spent on rewards.';
COMMENT ON COLUMN loyalty.debit_total.coins_expired IS 'Debits of type `expire`.';
COMMENT ON COLUMN loyalty.debit_total.coins_reverted IS 'Debits of type `revert`: coins taken back, for example after a refund.';
COMMENT ON COLUMN loyalty.debit_total.last_debit_at IS 'Time of the lead''s latest debit.';
COMMENT ON COLUMN loyalty.debit_total.last_redeemed_at IS 'Time of the lead''s latest `redeem` debit.';
COMMENT ON COLUMN loyalty.debit_total.as_of IS 'End of the data interval the run computed: debits at or after it are left out.';
