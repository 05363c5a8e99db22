-- Shared derived tables that segments read, and the segments' registry, membership and history.
--
-- Every derived table is rebuilt by each run. Each is a partitioned table with one partition: the
-- run builds the new contents into a fresh table with CREATE TABLE AS (which Postgres can run in
-- parallel and which leaves no dead rows or index upkeep behind), then swaps it in for the old
-- partition within the derive transaction. Queries and views read the partitioned table and never
-- see a half-built state; while the derive transaction swaps, they wait for it to commit.
--
-- The tables drop the profile's former flag columns: segment files under include/sql/segments
-- compute the flags now.

DROP TABLE loyalty.credit_lot;
DROP TABLE loyalty.customer_profile;

------------------------------------------------------------------------------------------------
-- Shared derived tables. Their partitions are created by the first run.
------------------------------------------------------------------------------------------------

CREATE TABLE loyalty.ledger_total (
    workspace_id     text          NOT NULL,
    lead_id          uuid          NOT NULL,
    coin_balance     numeric(14,2) NOT NULL,
    coins_debited    numeric(14,2) NOT NULL,
    coins_earned     numeric(14,2) NOT NULL,
    coins_redeemed   numeric(14,2) NOT NULL,
    coins_expired    numeric(14,2) NOT NULL,
    coins_reverted   numeric(14,2) NOT NULL,
    last_ledger_at   timestamptz   NOT NULL,
    last_redeemed_at timestamptz,
    as_of            timestamptz   NOT NULL
) PARTITION BY LIST (workspace_id);
COMMENT ON TABLE loyalty.ledger_total IS 'Per-lead sums of the successful ledger before `as_of`, test accounts left out: the input of the credit lots and the profile.';
COMMENT ON COLUMN loyalty.ledger_total.workspace_id IS 'Nector workspace (brand).';
COMMENT ON COLUMN loyalty.ledger_total.lead_id IS 'Nector lead.';
COMMENT ON COLUMN loyalty.ledger_total.coin_balance IS 'Credits minus debits.';
COMMENT ON COLUMN loyalty.ledger_total.coins_debited IS 'All debits: redemptions, expiry, reversals and adjustments.';
COMMENT ON COLUMN loyalty.ledger_total.coins_earned IS 'Credits of type `reward`.';
COMMENT ON COLUMN loyalty.ledger_total.coins_redeemed IS 'Debits of type `redeem`: coins spent on rewards.';
COMMENT ON COLUMN loyalty.ledger_total.coins_expired IS 'Debits of type `expire`.';
COMMENT ON COLUMN loyalty.ledger_total.coins_reverted IS 'Debits of type `revert`: coins taken back, for example after a refund.';
COMMENT ON COLUMN loyalty.ledger_total.last_ledger_at IS 'Time of the lead''s latest transaction.';
COMMENT ON COLUMN loyalty.ledger_total.last_redeemed_at IS 'Time of the lead''s latest `redeem` debit.';
COMMENT ON COLUMN loyalty.ledger_total.as_of IS 'End of the data interval the run computed: transactions at or after it are left out.';

CREATE TABLE loyalty.credit_lot (
    workspace_id         text          NOT NULL,
    wallettransaction_id uuid          NOT NULL,
    lead_id              uuid          NOT NULL,
    credit_type          text          NOT NULL,
    earned_at            timestamptz   NOT NULL,
    expire_at            timestamptz,
    expiry_source        text,
    amount               numeric(14,2) NOT NULL,
    remaining            numeric(14,2) NOT NULL,
    as_of                timestamptz   NOT NULL
) PARTITION BY LIST (workspace_id);
COMMENT ON TABLE loyalty.credit_lot IS 'Every successful credit before `as_of` with what remains of it. All debits of a lead (redemptions, expiry, reversals, adjustments) use up its credits in expiry order, soonest first, then by earning time. Test accounts are left out.';
COMMENT ON COLUMN loyalty.credit_lot.workspace_id IS 'Nector workspace (brand).';
COMMENT ON COLUMN loyalty.credit_lot.wallettransaction_id IS 'The credit''s wallet transaction.';
COMMENT ON COLUMN loyalty.credit_lot.lead_id IS 'Nector lead.';
COMMENT ON COLUMN loyalty.credit_lot.credit_type IS 'Transaction type of the credit: `reward` (earned) or `adjust`.';
COMMENT ON COLUMN loyalty.credit_lot.earned_at IS 'When the credit was made.';
COMMENT ON COLUMN loyalty.credit_lot.expire_at IS 'When the credit''s coins expire; NULL for never.';
COMMENT ON COLUMN loyalty.credit_lot.expiry_source IS '`export` when expire_at came with the credit, `coin_expiry_days` when the setting supplied it, NULL for no expiry.';
COMMENT ON COLUMN loyalty.credit_lot.amount IS 'Coins credited.';
COMMENT ON COLUMN loyalty.credit_lot.remaining IS 'Coins of this credit not yet spent, expired or reverted at `as_of`.';
COMMENT ON COLUMN loyalty.credit_lot.as_of IS 'End of the data interval the run computed.';

CREATE TABLE loyalty.coupon_state (
    workspace_id text        NOT NULL,
    coupon_id    uuid        NOT NULL,
    lead_id      uuid        NOT NULL,
    source       text,
    offer_name   text,
    code         text        NOT NULL,
    issued_at    timestamptz NOT NULL,
    expire_at    timestamptz,
    used_at      timestamptz,
    state        text        NOT NULL,
    as_of        timestamptz NOT NULL
) PARTITION BY LIST (workspace_id);
COMMENT ON TABLE loyalty.coupon_state IS 'Every coupon issued before `as_of` with its state at `as_of`. Test accounts are left out.';
COMMENT ON COLUMN loyalty.coupon_state.workspace_id IS 'Nector workspace (brand).';
COMMENT ON COLUMN loyalty.coupon_state.coupon_id IS 'Nector coupon.';
COMMENT ON COLUMN loyalty.coupon_state.lead_id IS 'Lead the coupon was issued to.';
COMMENT ON COLUMN loyalty.coupon_state.source IS 'Why it was issued: `redeem` (bought with coins), `referral_referee`, `referral_referrer` or `trigger`.';
COMMENT ON COLUMN loyalty.coupon_state.offer_name IS 'Offer the coupon belongs to.';
COMMENT ON COLUMN loyalty.coupon_state.code IS 'Discount code.';
COMMENT ON COLUMN loyalty.coupon_state.issued_at IS 'When the coupon was issued.';
COMMENT ON COLUMN loyalty.coupon_state.expire_at IS 'When the coupon expires; NULL for never.';
COMMENT ON COLUMN loyalty.coupon_state.used_at IS 'When the coupon was used, if before `as_of`.';
COMMENT ON COLUMN loyalty.coupon_state.state IS '`open` (neither used nor expired at `as_of`), `used` or `expired`.';
COMMENT ON COLUMN loyalty.coupon_state.as_of IS 'End of the data interval the run computed.';

CREATE TABLE loyalty.referral_state (
    workspace_id     text        NOT NULL,
    referral_id      uuid        NOT NULL,
    referrer_lead_id uuid        NOT NULL,
    friend_lead_id   uuid,
    referral_code    text,
    created_at       timestamptz NOT NULL,
    completed_at     timestamptz,
    state            text        NOT NULL,
    as_of            timestamptz NOT NULL
) PARTITION BY LIST (workspace_id);
COMMENT ON TABLE loyalty.referral_state IS 'Every referral started before `as_of` with its state at `as_of`. Referrals between test accounts and others are kept.';
COMMENT ON COLUMN loyalty.referral_state.workspace_id IS 'Nector workspace (brand).';
COMMENT ON COLUMN loyalty.referral_state.referral_id IS 'Nector referral.';
COMMENT ON COLUMN loyalty.referral_state.referrer_lead_id IS 'The customer who referred.';
COMMENT ON COLUMN loyalty.referral_state.friend_lead_id IS 'The referred friend, once they claimed the referral.';
COMMENT ON COLUMN loyalty.referral_state.referral_code IS 'Referral code the friend used.';
COMMENT ON COLUMN loyalty.referral_state.created_at IS 'When the friend claimed the referral.';
COMMENT ON COLUMN loyalty.referral_state.completed_at IS 'When the friend''s qualifying order completed it, if before `as_of`.';
COMMENT ON COLUMN loyalty.referral_state.state IS '`open` (the friend has not placed the qualifying order), `completed` or `cancelled` at `as_of`. A cancellation counts from the record''s last update.';
COMMENT ON COLUMN loyalty.referral_state.as_of IS 'End of the data interval the run computed.';

CREATE TABLE loyalty.customer_profile (
    workspace_id                   text          NOT NULL,
    lead_id                        uuid          NOT NULL,
    customer_id                    text,
    user_id                        text,
    as_of                          timestamptz   NOT NULL,
    name                           text,
    email                          text,
    mobile_e164                    text,
    birth_date                     date,
    tier                           text,
    tier_rank                      integer,
    coin_balance                   numeric(14,2) NOT NULL,
    lifetime_coins_earned          numeric(14,2) NOT NULL,
    lifetime_coins_redeemed        numeric(14,2) NOT NULL,
    lifetime_coins_expired         numeric(14,2) NOT NULL,
    lifetime_coins_reverted        numeric(14,2) NOT NULL,
    coins_expiring_soon            numeric(14,2) NOT NULL,
    next_coin_expiry_at            timestamptz,
    oldest_unspent_coins_earned_at timestamptz,
    unused_coupon_count            integer       NOT NULL,
    next_coupon_expiry_at          timestamptz,
    redeemed_coupon_count          integer       NOT NULL,
    completed_referral_count       integer       NOT NULL,
    last_referral_completed_at     timestamptz,
    review_count                   integer       NOT NULL,
    last_review_at                 timestamptz,
    last_redeemed_at               timestamptz,
    last_activity_at               timestamptz,
    last_tier_upgrade_at           timestamptz,
    last_tier_downgrade_at         timestamptz,
    PRIMARY KEY (workspace_id, lead_id)
) PARTITION BY LIST (workspace_id);
COMMENT ON TABLE loyalty.customer_profile IS 'One row per lead created before `as_of` (test accounts left out) with loyalty totals from activity before `as_of`. Segments read it.';
COMMENT ON COLUMN loyalty.customer_profile.workspace_id IS 'Nector workspace (brand).';
COMMENT ON COLUMN loyalty.customer_profile.lead_id IS 'Nector lead.';
COMMENT ON COLUMN loyalty.customer_profile.customer_id IS 'Store customer id as Nector holds it, for example `shopify-7012345678901`.';
COMMENT ON COLUMN loyalty.customer_profile.user_id IS 'WebEngage userId: the store customer id, by default without its platform prefix. NULL when the lead has no customer id.';
COMMENT ON COLUMN loyalty.customer_profile.as_of IS 'End of the data interval the profile was computed for: midnight in the merchant''s time zone.';
COMMENT ON COLUMN loyalty.customer_profile.name IS 'Name of the lead.';
COMMENT ON COLUMN loyalty.customer_profile.email IS 'Email, trimmed and lower-cased; NULL when Nector has none.';
COMMENT ON COLUMN loyalty.customer_profile.mobile_e164 IS 'Mobile number in E.164 form.';
COMMENT ON COLUMN loyalty.customer_profile.birth_date IS 'Date of birth.';
COMMENT ON COLUMN loyalty.customer_profile.tier IS 'VIP tier at `as_of`: the latest tier change before it, else the tier in the customers export.';
COMMENT ON COLUMN loyalty.customer_profile.tier_rank IS 'Rank of that tier in its workspace, 1 = lowest.';
COMMENT ON COLUMN loyalty.customer_profile.coin_balance IS 'Coins credited minus coins debited.';
COMMENT ON COLUMN loyalty.customer_profile.lifetime_coins_earned IS 'Coins credited as rewards (`cr`/`reward`).';
COMMENT ON COLUMN loyalty.customer_profile.lifetime_coins_redeemed IS 'Coins spent on rewards (`dr`/`redeem`), not expiry or reversals.';
COMMENT ON COLUMN loyalty.customer_profile.lifetime_coins_expired IS 'Coins debited by expiry (`dr`/`expire`).';
COMMENT ON COLUMN loyalty.customer_profile.lifetime_coins_reverted IS 'Coins taken back by reversals (`dr`/`revert`), for example after a refund.';
COMMENT ON COLUMN loyalty.customer_profile.coins_expiring_soon IS 'Unspent coins expiring after `as_of` and within the `days` parameter of segment coins_expiring_soon.';
COMMENT ON COLUMN loyalty.customer_profile.next_coin_expiry_at IS 'When the next unspent coins expire.';
COMMENT ON COLUMN loyalty.customer_profile.oldest_unspent_coins_earned_at IS 'When the oldest credit with unspent, unexpired coins was earned.';
COMMENT ON COLUMN loyalty.customer_profile.unused_coupon_count IS 'Coupons open at `as_of`: issued, not used and not expired.';
COMMENT ON COLUMN loyalty.customer_profile.next_coupon_expiry_at IS 'When the next open coupon expires.';
COMMENT ON COLUMN loyalty.customer_profile.redeemed_coupon_count IS 'Coupons bought with coins (source `redeem`).';
COMMENT ON COLUMN loyalty.customer_profile.completed_referral_count IS 'Referrals by this lead that completed.';
COMMENT ON COLUMN loyalty.customer_profile.last_referral_completed_at IS 'When the latest referral by this lead completed.';
COMMENT ON COLUMN loyalty.customer_profile.review_count IS 'Reviews written.';
COMMENT ON COLUMN loyalty.customer_profile.last_review_at IS 'When the latest review was written.';
COMMENT ON COLUMN loyalty.customer_profile.last_redeemed_at IS 'When coins were last spent on a reward.';
COMMENT ON COLUMN loyalty.customer_profile.last_activity_at IS 'Latest ledger transaction, coupon, completed referral or review.';
COMMENT ON COLUMN loyalty.customer_profile.last_tier_upgrade_at IS 'Latest change to a higher-ranked tier.';
COMMENT ON COLUMN loyalty.customer_profile.last_tier_downgrade_at IS 'Latest change to a lower-ranked tier.';

------------------------------------------------------------------------------------------------
-- Segments.
------------------------------------------------------------------------------------------------

CREATE TABLE loyalty.segment (
    segment           text        PRIMARY KEY,
    position          integer     NOT NULL,
    file              text        NOT NULL,
    description       text        NOT NULL,
    attribute_name    text        NOT NULL,
    attribute_type    text        NOT NULL,
    parameters        jsonb       NOT NULL,
    entry_event       text,
    event_data        jsonb       NOT NULL,
    definition_sha256 text        NOT NULL,
    query             text        NOT NULL,
    as_of             timestamptz NOT NULL,
    refreshed_at      timestamptz NOT NULL DEFAULT now()
);
COMMENT ON TABLE loyalty.segment IS 'The segments of the latest run, one per file under include/sql/segments, with the parameters used.';
COMMENT ON COLUMN loyalty.segment.segment IS 'Segment name, the file name without `.sql`.';
COMMENT ON COLUMN loyalty.segment.position IS 'Order of the file among the segment files.';
COMMENT ON COLUMN loyalty.segment.file IS 'Path of the segment file.';
COMMENT ON COLUMN loyalty.segment.description IS 'Who is a member, from the file''s header.';
COMMENT ON COLUMN loyalty.segment.attribute_name IS 'WebEngage user attribute carrying the membership.';
COMMENT ON COLUMN loyalty.segment.attribute_type IS 'WebEngage data type of that attribute.';
COMMENT ON COLUMN loyalty.segment.parameters IS 'Parameter values of the run: the defaults with the `segment_parameters` setting applied.';
COMMENT ON COLUMN loyalty.segment.entry_event IS 'WebEngage event queued when a customer enters the segment; NULL for none.';
COMMENT ON COLUMN loyalty.segment.event_data IS 'The entry event''s eventData keys: key, type, query column and meaning.';
COMMENT ON COLUMN loyalty.segment.definition_sha256 IS 'sha256 of the segment file, to tell definition changes apart.';
COMMENT ON COLUMN loyalty.segment.query IS 'The segment''s query as run.';
COMMENT ON COLUMN loyalty.segment.as_of IS 'End of the data interval of the latest run.';
COMMENT ON COLUMN loyalty.segment.refreshed_at IS 'When the latest run computed the segment.';

-- One partition per segment, created and swapped by each run; a removed segment's partition goes.
CREATE TABLE loyalty.segment_member (
    segment         text        NOT NULL,
    workspace_id    text        NOT NULL,
    lead_id         uuid        NOT NULL,
    attribute_value jsonb,
    entry_details   jsonb,
    as_of           timestamptz NOT NULL,
    PRIMARY KEY (segment, workspace_id, lead_id)
) PARTITION BY LIST (segment);
COMMENT ON TABLE loyalty.segment_member IS 'Members of each segment at `as_of`, from the latest run. Only leads with a profile can be members, so test accounts never are.';
COMMENT ON COLUMN loyalty.segment_member.segment IS 'Segment name.';
COMMENT ON COLUMN loyalty.segment_member.workspace_id IS 'Nector workspace (brand).';
COMMENT ON COLUMN loyalty.segment_member.lead_id IS 'Nector lead.';
COMMENT ON COLUMN loyalty.segment_member.attribute_value IS 'Value of the segment''s WebEngage attribute for a segment whose attribute is not boolean; NULL for a boolean one, which is true for members.';
COMMENT ON COLUMN loyalty.segment_member.entry_details IS 'eventData values of the segment''s entry event for this member at `as_of`; NULL for a segment without one.';
COMMENT ON COLUMN loyalty.segment_member.as_of IS 'End of the data interval of the latest run.';

CREATE TABLE loyalty.segment_membership_history (
    segment       text  NOT NULL,
    workspace_id  text  NOT NULL,
    lead_id       uuid  NOT NULL,
    entered_on    date  NOT NULL,
    left_on       date,
    entry_details jsonb,
    PRIMARY KEY (segment, workspace_id, lead_id, entered_on),
    CHECK (left_on > entered_on)
);
CREATE UNIQUE INDEX segment_membership_history_open
    ON loyalty.segment_membership_history (segment, workspace_id, lead_id) WHERE left_on IS NULL;
CREATE INDEX ON loyalty.segment_membership_history (entered_on);
CREATE INDEX ON loyalty.segment_membership_history (left_on);
COMMENT ON TABLE loyalty.segment_membership_history IS 'Each stay of a lead in a segment: the day it entered and the day it left (NULL while still a member). Days are run days (`as_of_date`): membership at 00:00 of that day in the merchant''s time zone.';
COMMENT ON COLUMN loyalty.segment_membership_history.segment IS 'Segment name.';
COMMENT ON COLUMN loyalty.segment_membership_history.workspace_id IS 'Nector workspace (brand).';
COMMENT ON COLUMN loyalty.segment_membership_history.lead_id IS 'Nector lead.';
COMMENT ON COLUMN loyalty.segment_membership_history.entered_on IS 'First run day the lead was a member.';
COMMENT ON COLUMN loyalty.segment_membership_history.left_on IS 'First run day the lead was no longer a member; NULL while still a member.';
COMMENT ON COLUMN loyalty.segment_membership_history.entry_details IS 'eventData values of the entry event on the day the lead entered.';

CREATE TABLE loyalty.segment_day (
    segment           text        NOT NULL,
    workspace_id      text        NOT NULL,
    as_of_date        date        NOT NULL,
    as_of             timestamptz NOT NULL,
    members           bigint      NOT NULL,
    entered           bigint      NOT NULL,
    exited            bigint      NOT NULL,
    parameters        jsonb       NOT NULL,
    definition_sha256 text        NOT NULL,
    computed_at       timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (segment, workspace_id, as_of_date)
);
COMMENT ON TABLE loyalty.segment_day IS 'Size, entries and exits of each segment per workspace and run day, recorded with the parameters and definition used.';
COMMENT ON COLUMN loyalty.segment_day.segment IS 'Segment name.';
COMMENT ON COLUMN loyalty.segment_day.workspace_id IS 'Nector workspace (brand).';
COMMENT ON COLUMN loyalty.segment_day.as_of_date IS 'Run day: membership at 00:00 of this day in the merchant''s time zone, from activity up to the end of the day before.';
COMMENT ON COLUMN loyalty.segment_day.as_of IS 'The run''s `as_of` instant.';
COMMENT ON COLUMN loyalty.segment_day.members IS 'Members on this day.';
COMMENT ON COLUMN loyalty.segment_day.entered IS 'Leads that are members on this day and were not on the previous run day.';
COMMENT ON COLUMN loyalty.segment_day.exited IS 'Leads that were members on the previous run day and are not on this day.';
COMMENT ON COLUMN loyalty.segment_day.parameters IS 'Parameter values used on this day.';
COMMENT ON COLUMN loyalty.segment_day.definition_sha256 IS 'sha256 of the segment file used on this day.';
COMMENT ON COLUMN loyalty.segment_day.computed_at IS 'When this day was last computed; a rerun of the day replaces the row.';
