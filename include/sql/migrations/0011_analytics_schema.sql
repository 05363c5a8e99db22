-- The analyst surface: schema `analytics` of documented views over the derived tables, and the role
-- `loyalty_analyst`, which may read these views and nothing else. Grant the role to a login role to
-- give an analyst access: GRANT loyalty_analyst TO some_login;
-- docs/data-dictionary.md is generated from the comments below (make docs).

CREATE SCHEMA IF NOT EXISTS analytics;
COMMENT ON SCHEMA analytics IS 'Read-only views for analysts: loyalty profiles, the ledger, segments and their history, and delivery to WebEngage. Test accounts are left out everywhere.';

CREATE VIEW analytics.customer_profile AS
SELECT workspace_id, lead_id, customer_id, user_id, as_of, name, email, mobile_e164, birth_date, tier, tier_rank,
       coin_balance, lifetime_coins_earned, lifetime_coins_redeemed, lifetime_coins_expired, lifetime_coins_reverted,
       coins_expiring_soon, next_coin_expiry_at, oldest_unspent_coins_earned_at, unused_coupon_count,
       next_coupon_expiry_at, redeemed_coupon_count, completed_referral_count, last_referral_completed_at,
       review_count, last_review_at, last_redeemed_at, last_activity_at, last_tier_upgrade_at, last_tier_downgrade_at
FROM loyalty.customer_profile;
COMMENT ON VIEW analytics.customer_profile IS 'One row per customer (lead) created before `as_of`, with loyalty totals from activity before `as_of`, the midnight that ends the latest run''s data.';
COMMENT ON COLUMN analytics.customer_profile.workspace_id IS 'Nector workspace (brand).';
COMMENT ON COLUMN analytics.customer_profile.lead_id IS 'Nector lead: the customer.';
COMMENT ON COLUMN analytics.customer_profile.customer_id IS 'Store customer id as Nector holds it, for example `shopify-7012345678901`.';
COMMENT ON COLUMN analytics.customer_profile.user_id IS 'WebEngage userId; NULL when the lead has no customer id (never sent to WebEngage).';
COMMENT ON COLUMN analytics.customer_profile.as_of IS 'Instant the profile describes: midnight in the merchant''s time zone.';
COMMENT ON COLUMN analytics.customer_profile.name IS 'Customer name.';
COMMENT ON COLUMN analytics.customer_profile.email IS 'Email, trimmed and lower-cased; NULL when Nector has none.';
COMMENT ON COLUMN analytics.customer_profile.mobile_e164 IS 'Mobile number in E.164 form.';
COMMENT ON COLUMN analytics.customer_profile.birth_date IS 'Date of birth.';
COMMENT ON COLUMN analytics.customer_profile.tier IS 'VIP tier at `as_of`.';
COMMENT ON COLUMN analytics.customer_profile.tier_rank IS 'Rank of the tier in its workspace, 1 = lowest.';
COMMENT ON COLUMN analytics.customer_profile.coin_balance IS 'Coins credited minus coins debited.';
COMMENT ON COLUMN analytics.customer_profile.lifetime_coins_earned IS 'Coins credited as rewards.';
COMMENT ON COLUMN analytics.customer_profile.lifetime_coins_redeemed IS 'Coins spent on rewards; expiry and reversals are not redemptions.';
COMMENT ON COLUMN analytics.customer_profile.lifetime_coins_expired IS 'Coins debited by expiry.';
COMMENT ON COLUMN analytics.customer_profile.lifetime_coins_reverted IS 'Coins taken back by reversals, for example after a refund.';
COMMENT ON COLUMN analytics.customer_profile.coins_expiring_soon IS 'Unspent coins expiring within the `days` parameter of segment coins_expiring_soon (30 by default) after `as_of`.';
COMMENT ON COLUMN analytics.customer_profile.next_coin_expiry_at IS 'When the next unspent coins expire.';
COMMENT ON COLUMN analytics.customer_profile.oldest_unspent_coins_earned_at IS 'When the oldest credit with unspent, unexpired coins was earned.';
COMMENT ON COLUMN analytics.customer_profile.unused_coupon_count IS 'Coupons issued, neither used nor expired at `as_of`.';
COMMENT ON COLUMN analytics.customer_profile.next_coupon_expiry_at IS 'When the next unused coupon expires.';
COMMENT ON COLUMN analytics.customer_profile.redeemed_coupon_count IS 'Coupons bought with coins.';
COMMENT ON COLUMN analytics.customer_profile.completed_referral_count IS 'Referrals by this customer that completed.';
COMMENT ON COLUMN analytics.customer_profile.last_referral_completed_at IS 'When the latest referral by this customer completed.';
COMMENT ON COLUMN analytics.customer_profile.review_count IS 'Reviews written.';
COMMENT ON COLUMN analytics.customer_profile.last_review_at IS 'When the latest review was written.';
COMMENT ON COLUMN analytics.customer_profile.last_redeemed_at IS 'When coins were last spent on a reward.';
COMMENT ON COLUMN analytics.customer_profile.last_activity_at IS 'Latest ledger transaction, coupon, completed referral or review.';
COMMENT ON COLUMN analytics.customer_profile.last_tier_upgrade_at IS 'Latest move to a higher-ranked tier.';
COMMENT ON COLUMN analytics.customer_profile.last_tier_downgrade_at IS 'Latest move to a lower-ranked tier.';

CREATE VIEW analytics.wallet_ledger AS
SELECT ledger.workspace_id, ledger.wallettransaction_id, ledger.lead_id, ledger.customer_id, ledger.operation,
       ledger.type, ledger.amount, ledger.signed_amount, ledger.balance_after, ledger.title, ledger.description,
       ledger.reference_order_id, ledger.coupon_id, ledger.expire_at, ledger.created_at
FROM loyalty.wallet_ledger AS ledger
WHERE NOT EXISTS (SELECT 1 FROM loyalty.test_account AS test
                  WHERE test.workspace_id = ledger.workspace_id AND test.lead_id = ledger.lead_id);
COMMENT ON VIEW analytics.wallet_ledger IS 'Successful coin transactions, all loaded ones including those after `as_of`, with the running balance per customer. Pending and failed transactions are left out.';
COMMENT ON COLUMN analytics.wallet_ledger.workspace_id IS 'Nector workspace (brand).';
COMMENT ON COLUMN analytics.wallet_ledger.wallettransaction_id IS 'Nector wallet transaction.';
COMMENT ON COLUMN analytics.wallet_ledger.lead_id IS 'Nector lead: the customer.';
COMMENT ON COLUMN analytics.wallet_ledger.customer_id IS 'Store customer id as the export carried it.';
COMMENT ON COLUMN analytics.wallet_ledger.operation IS '`cr` (credit) or `dr` (debit).';
COMMENT ON COLUMN analytics.wallet_ledger.type IS 'Why the balance changed: `reward`, `redeem`, `expire`, `revert` or `adjust`.';
COMMENT ON COLUMN analytics.wallet_ledger.amount IS 'Coins moved, never negative.';
COMMENT ON COLUMN analytics.wallet_ledger.signed_amount IS 'Coins moved, negative for debits.';
COMMENT ON COLUMN analytics.wallet_ledger.balance_after IS 'Coin balance of the customer right after this transaction.';
COMMENT ON COLUMN analytics.wallet_ledger.title IS 'Nector''s title of the transaction, for example `Order reward`.';
COMMENT ON COLUMN analytics.wallet_ledger.description IS 'Nector''s description of the transaction.';
COMMENT ON COLUMN analytics.wallet_ledger.reference_order_id IS 'Store order behind the transaction, when there is one.';
COMMENT ON COLUMN analytics.wallet_ledger.coupon_id IS 'Coupon a redemption bought.';
COMMENT ON COLUMN analytics.wallet_ledger.expire_at IS 'When the coins of a credit expire, as exported.';
COMMENT ON COLUMN analytics.wallet_ledger.created_at IS 'When the transaction happened.';

CREATE VIEW analytics.credit_lot AS
SELECT workspace_id, wallettransaction_id, lead_id, credit_type, earned_at, expire_at, expiry_source, amount, remaining,
       as_of
FROM loyalty.credit_lot;
COMMENT ON VIEW analytics.credit_lot IS 'Every credit before `as_of` with the coins that remain of it. Debits use up the credits that expire first, then the oldest. The coins expiring soon are the remaining coins of credits expiring after `as_of`. Empty after a database crash until the next run.';
COMMENT ON COLUMN analytics.credit_lot.workspace_id IS 'Nector workspace (brand).';
COMMENT ON COLUMN analytics.credit_lot.wallettransaction_id IS 'The credit''s wallet transaction.';
COMMENT ON COLUMN analytics.credit_lot.lead_id IS 'Nector lead: the customer.';
COMMENT ON COLUMN analytics.credit_lot.credit_type IS '`reward` (earned) or `adjust`.';
COMMENT ON COLUMN analytics.credit_lot.earned_at IS 'When the credit was made.';
COMMENT ON COLUMN analytics.credit_lot.expire_at IS 'When the credit''s coins expire; NULL for never.';
COMMENT ON COLUMN analytics.credit_lot.expiry_source IS '`export` when the credit carried expire_at, `coin_expiry_days` when the setting supplied it (earned_at plus that many days), NULL for no expiry.';
COMMENT ON COLUMN analytics.credit_lot.amount IS 'Coins credited.';
COMMENT ON COLUMN analytics.credit_lot.remaining IS 'Coins of this credit not yet spent, expired or reverted at `as_of`.';
COMMENT ON COLUMN analytics.credit_lot.as_of IS 'Instant the lots describe.';

CREATE VIEW analytics.coupon_state AS
SELECT workspace_id, coupon_id, lead_id, source, offer_name, code, issued_at, expire_at, used_at, state, as_of
FROM loyalty.coupon_state;
COMMENT ON VIEW analytics.coupon_state IS 'Every coupon issued before `as_of` with its state at `as_of`. Empty after a database crash until the next run.';
COMMENT ON COLUMN analytics.coupon_state.workspace_id IS 'Nector workspace (brand).';
COMMENT ON COLUMN analytics.coupon_state.coupon_id IS 'Nector coupon.';
COMMENT ON COLUMN analytics.coupon_state.lead_id IS 'Customer the coupon was issued to.';
COMMENT ON COLUMN analytics.coupon_state.source IS 'Why it was issued: `redeem` (bought with coins), `referral_referee`, `referral_referrer` or `trigger`.';
COMMENT ON COLUMN analytics.coupon_state.offer_name IS 'Offer the coupon belongs to.';
COMMENT ON COLUMN analytics.coupon_state.code IS 'Discount code.';
COMMENT ON COLUMN analytics.coupon_state.issued_at IS 'When the coupon was issued.';
COMMENT ON COLUMN analytics.coupon_state.expire_at IS 'When the coupon expires; NULL for never.';
COMMENT ON COLUMN analytics.coupon_state.used_at IS 'When the coupon was used, if before `as_of`.';
COMMENT ON COLUMN analytics.coupon_state.state IS '`open` (neither used nor expired), `used` or `expired`, at `as_of`.';
COMMENT ON COLUMN analytics.coupon_state.as_of IS 'Instant the states describe.';

CREATE VIEW analytics.referral_state AS
SELECT workspace_id, referral_id, referrer_lead_id, friend_lead_id, referral_code, created_at, completed_at, state, as_of
FROM loyalty.referral_state;
COMMENT ON VIEW analytics.referral_state IS 'Every referral started before `as_of` with its state at `as_of`. Empty after a database crash until the next run.';
COMMENT ON COLUMN analytics.referral_state.workspace_id IS 'Nector workspace (brand).';
COMMENT ON COLUMN analytics.referral_state.referral_id IS 'Nector referral.';
COMMENT ON COLUMN analytics.referral_state.referrer_lead_id IS 'The customer who referred.';
COMMENT ON COLUMN analytics.referral_state.friend_lead_id IS 'The referred friend, once they claimed the referral.';
COMMENT ON COLUMN analytics.referral_state.referral_code IS 'Referral code the friend used.';
COMMENT ON COLUMN analytics.referral_state.created_at IS 'When the friend claimed the referral.';
COMMENT ON COLUMN analytics.referral_state.completed_at IS 'When the friend''s qualifying order completed the referral, if before `as_of`.';
COMMENT ON COLUMN analytics.referral_state.state IS '`open` (the friend has not placed the qualifying order), `completed` or `cancelled`, at `as_of`.';
COMMENT ON COLUMN analytics.referral_state.as_of IS 'Instant the states describe.';

CREATE VIEW analytics.segment AS
SELECT segment, position, file, description, attribute_name, attribute_type, parameters, entry_event, event_data,
       definition_sha256, query, as_of, refreshed_at
FROM loyalty.segment;
COMMENT ON VIEW analytics.segment IS 'The segments of the latest run, one per file under include/sql/segments, with their definition and the parameters used.';
COMMENT ON COLUMN analytics.segment.segment IS 'Segment name.';
COMMENT ON COLUMN analytics.segment.position IS 'Order of the segment file.';
COMMENT ON COLUMN analytics.segment.file IS 'Path of the segment file.';
COMMENT ON COLUMN analytics.segment.description IS 'Who is a member.';
COMMENT ON COLUMN analytics.segment.attribute_name IS 'WebEngage user attribute carrying the membership.';
COMMENT ON COLUMN analytics.segment.attribute_type IS 'WebEngage data type of the attribute.';
COMMENT ON COLUMN analytics.segment.parameters IS 'Parameter values used, after the `segment_parameters` setting.';
COMMENT ON COLUMN analytics.segment.entry_event IS 'WebEngage event sent when a customer enters the segment; NULL for none.';
COMMENT ON COLUMN analytics.segment.event_data IS 'The entry event''s eventData keys with their type, source column and meaning.';
COMMENT ON COLUMN analytics.segment.definition_sha256 IS 'sha256 of the segment file.';
COMMENT ON COLUMN analytics.segment.query IS 'The segment''s query.';
COMMENT ON COLUMN analytics.segment.as_of IS 'Instant the latest run computed membership at.';
COMMENT ON COLUMN analytics.segment.refreshed_at IS 'When the latest run computed the segment.';

CREATE VIEW analytics.segment_membership AS
SELECT member.segment, member.workspace_id, member.lead_id, profile.customer_id, profile.user_id, stay.entered_on,
       member.attribute_value, member.entry_details, member.as_of
FROM loyalty.segment_member AS member
JOIN loyalty.customer_profile AS profile
  ON profile.workspace_id = member.workspace_id AND profile.lead_id = member.lead_id
LEFT JOIN loyalty.segment_membership_history AS stay
       ON stay.segment = member.segment AND stay.workspace_id = member.workspace_id
      AND stay.lead_id = member.lead_id AND stay.left_on IS NULL;
COMMENT ON VIEW analytics.segment_membership IS 'Members of each segment at `as_of` of the latest run.';
COMMENT ON COLUMN analytics.segment_membership.segment IS 'Segment name.';
COMMENT ON COLUMN analytics.segment_membership.workspace_id IS 'Nector workspace (brand).';
COMMENT ON COLUMN analytics.segment_membership.lead_id IS 'Nector lead: the customer.';
COMMENT ON COLUMN analytics.segment_membership.customer_id IS 'Store customer id.';
COMMENT ON COLUMN analytics.segment_membership.user_id IS 'WebEngage userId; NULL when the customer is not sent to WebEngage.';
COMMENT ON COLUMN analytics.segment_membership.entered_on IS 'Run day the current stay in the segment began; NULL when the latest run was a backfill of an earlier day.';
COMMENT ON COLUMN analytics.segment_membership.attribute_value IS 'Value of the WebEngage attribute for a segment whose attribute is not boolean; NULL for a boolean one.';
COMMENT ON COLUMN analytics.segment_membership.entry_details IS 'eventData values of the entry event as of `as_of`; NULL for a segment without one.';
COMMENT ON COLUMN analytics.segment_membership.as_of IS 'Instant membership was computed at.';

CREATE VIEW analytics.segment_membership_history AS
SELECT segment, workspace_id, lead_id, entered_on, left_on, entry_details
FROM loyalty.segment_membership_history;
COMMENT ON VIEW analytics.segment_membership_history IS 'Each stay of a customer in a segment: the run day it entered and the run day it left. A run day D describes membership at 00:00 of D in the merchant''s time zone, from activity up to the end of the day before.';
COMMENT ON COLUMN analytics.segment_membership_history.segment IS 'Segment name.';
COMMENT ON COLUMN analytics.segment_membership_history.workspace_id IS 'Nector workspace (brand).';
COMMENT ON COLUMN analytics.segment_membership_history.lead_id IS 'Nector lead: the customer.';
COMMENT ON COLUMN analytics.segment_membership_history.entered_on IS 'First run day the customer was a member.';
COMMENT ON COLUMN analytics.segment_membership_history.left_on IS 'First run day the customer was no longer a member; NULL while still a member.';
COMMENT ON COLUMN analytics.segment_membership_history.entry_details IS 'eventData values of the entry event on the day the customer entered.';

CREATE VIEW analytics.segment_daily AS
SELECT segment, workspace_id, as_of_date, members, entered, exited, entered - exited AS net_change, parameters,
       definition_sha256, computed_at
FROM loyalty.segment_day;
COMMENT ON VIEW analytics.segment_daily IS 'Size, entries and exits of each segment per workspace and run day, for charting growth. A change of parameters or definition shows in the last two columns.';
COMMENT ON COLUMN analytics.segment_daily.segment IS 'Segment name.';
COMMENT ON COLUMN analytics.segment_daily.workspace_id IS 'Nector workspace (brand).';
COMMENT ON COLUMN analytics.segment_daily.as_of_date IS 'Run day: membership at 00:00 of this day in the merchant''s time zone.';
COMMENT ON COLUMN analytics.segment_daily.members IS 'Members on the run day.';
COMMENT ON COLUMN analytics.segment_daily.entered IS 'Customers who are members on this run day and were not on the previous one.';
COMMENT ON COLUMN analytics.segment_daily.exited IS 'Customers who were members on the previous run day and are not on this one.';
COMMENT ON COLUMN analytics.segment_daily.net_change IS 'entered minus exited.';
COMMENT ON COLUMN analytics.segment_daily.parameters IS 'Parameter values used on this day.';
COMMENT ON COLUMN analytics.segment_daily.definition_sha256 IS 'sha256 of the segment file used on this day.';
COMMENT ON COLUMN analytics.segment_daily.computed_at IS 'When the day was last computed.';

CREATE VIEW analytics.customer_delivery AS
SELECT profile.workspace_id,
       profile.lead_id,
       profile.user_id,
       state.sent_at                                         AS attributes_sent_at,
       coalesce(outbox.user_updates_waiting, 0) > 0          AS attributes_waiting,
       coalesce(outbox.events_sent, 0)                       AS events_sent,
       coalesce(outbox.events_waiting, 0)                    AS events_waiting,
       coalesce(outbox.events_skipped, 0)                    AS events_skipped,
       coalesce(outbox.items_dead, 0)                        AS items_dead,
       outbox.last_event_sent_at,
       outbox.last_dead_reason
FROM loyalty.customer_profile AS profile
LEFT JOIN sync.webengage_user_state AS state
       ON state.workspace_id = profile.workspace_id AND state.user_id = profile.user_id
LEFT JOIN (
    SELECT workspace_id,
           lead_id,
           count(*) FILTER (WHERE kind = 'user' AND status NOT IN ('sent', 'skipped', 'superseded', 'dead')) AS user_updates_waiting,
           count(*) FILTER (WHERE kind = 'event' AND status = 'sent')                                       AS events_sent,
           count(*) FILTER (WHERE kind = 'event' AND status NOT IN ('sent', 'skipped', 'superseded', 'dead')) AS events_waiting,
           count(*) FILTER (WHERE kind = 'event' AND status = 'skipped')                                    AS events_skipped,
           count(*) FILTER (WHERE status = 'dead')                                                          AS items_dead,
           max(sent_at) FILTER (WHERE kind = 'event' AND status = 'sent')                                   AS last_event_sent_at,
           (array_agg(coalesce(last_error, reason) ORDER BY queued_at DESC) FILTER (WHERE status = 'dead'))[1]
                                                                                                            AS last_dead_reason
    FROM sync.webengage_outbox
    GROUP BY workspace_id, lead_id
) AS outbox ON outbox.workspace_id = profile.workspace_id AND outbox.lead_id = profile.lead_id;
COMMENT ON VIEW analytics.customer_delivery IS 'Delivery to WebEngage per customer: when the attributes were last accepted, and the events sent, waiting, skipped and rejected.';
COMMENT ON COLUMN analytics.customer_delivery.workspace_id IS 'Nector workspace (brand).';
COMMENT ON COLUMN analytics.customer_delivery.lead_id IS 'Nector lead: the customer.';
COMMENT ON COLUMN analytics.customer_delivery.user_id IS 'WebEngage userId; NULL when the customer has no customer id and is not sent.';
COMMENT ON COLUMN analytics.customer_delivery.attributes_sent_at IS 'When WebEngage last accepted the customer''s attributes; NULL for never.';
COMMENT ON COLUMN analytics.customer_delivery.attributes_waiting IS 'An attribute update is queued and not accepted yet.';
COMMENT ON COLUMN analytics.customer_delivery.events_sent IS 'Events WebEngage accepted.';
COMMENT ON COLUMN analytics.customer_delivery.events_waiting IS 'Events queued and not accepted yet, including those whose last attempt failed.';
COMMENT ON COLUMN analytics.customer_delivery.events_skipped IS 'Events recorded but never sent: too old when first seen, or the customer has no customer id.';
COMMENT ON COLUMN analytics.customer_delivery.items_dead IS 'Events and attribute updates rejected, by the checks before sending or by WebEngage.';
COMMENT ON COLUMN analytics.customer_delivery.last_event_sent_at IS 'When WebEngage last accepted an event of the customer.';
COMMENT ON COLUMN analytics.customer_delivery.last_dead_reason IS 'Why the latest rejected item was rejected.';

-- The role is cluster-wide and may already exist: another database on the server, or an earlier
-- install, created it. Concurrent creators can still collide between the check and CREATE ROLE, so
-- the duplicate errors of that race are ignored too.
DO $$
BEGIN
    IF NOT EXISTS (SELECT FROM pg_catalog.pg_roles WHERE rolname = 'loyalty_analyst') THEN
        BEGIN
            CREATE ROLE loyalty_analyst NOLOGIN;
        EXCEPTION
            WHEN duplicate_object OR unique_violation THEN
                NULL;
            WHEN insufficient_privilege THEN
                RAISE EXCEPTION 'role loyalty_analyst does not exist and % may not create roles', current_user
                    USING HINT = 'Have an administrator run CREATE ROLE loyalty_analyst NOLOGIN, then run the migrations again.';
        END;
    END IF;
END $$;

GRANT USAGE ON SCHEMA analytics TO loyalty_analyst;
GRANT SELECT ON ALL TABLES IN SCHEMA analytics TO loyalty_analyst;
-- Views that later migrations add (as the role that runs migrations) are readable too.
ALTER DEFAULT PRIVILEGES IN SCHEMA analytics GRANT SELECT ON TABLES TO loyalty_analyst;
