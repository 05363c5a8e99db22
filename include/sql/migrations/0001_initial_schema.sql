-- Initial warehouse schema.
--   nector  staging tables, one per export entity, typed and keyed by (workspace_id, natural id)
--   loyalty derived tables: per-customer profile and segment flags, rebuilt by every run
--   sync    bookkeeping: loaded files, rejected rows, the WebEngage outbox, run reports
-- Requires Postgres 15 or newer.

CREATE SCHEMA IF NOT EXISTS nector;
CREATE SCHEMA IF NOT EXISTS loyalty;
CREATE SCHEMA IF NOT EXISTS sync;

------------------------------------------------------------------------------------------------
-- Functions the loader uses to validate and normalise text from the export files.
------------------------------------------------------------------------------------------------

CREATE FUNCTION nector.try_timestamptz(value text) RETURNS timestamptz
LANGUAGE plpgsql STABLE AS $$
BEGIN
    -- ISO 8601 only: a date, optionally a time, optionally a `Z` or an offset. A value without an
    -- offset is read in the session time zone, which the loader sets to the manifest's time zone.
    IF value !~ '^\d{4}-\d{2}-\d{2}([T ]\d{2}:\d{2}(:\d{2}(\.\d{1,6})?)?(Z|[+-]\d{2}(:?\d{2})?)?)?$' THEN
        RETURN NULL;
    END IF;
    RETURN value::timestamptz;
EXCEPTION WHEN datetime_field_overflow OR invalid_datetime_format THEN
    RETURN NULL;
END $$;

CREATE FUNCTION nector.try_date(value text) RETURNS date
LANGUAGE plpgsql IMMUTABLE AS $$
BEGIN
    IF value !~ '^\d{4}-\d{2}-\d{2}$' THEN
        RETURN NULL;
    END IF;
    RETURN value::date;
EXCEPTION WHEN datetime_field_overflow OR invalid_datetime_format THEN
    RETURN NULL;
END $$;

CREATE FUNCTION nector.normalize_email(value text) RETURNS text
LANGUAGE sql IMMUTABLE AS $$ SELECT lower(btrim(value)) $$;

-- `shopify-7012345678901` -> `shopify`; an id without a platform prefix has no platform.
CREATE FUNCTION nector.customer_id_platform(customer_id text) RETURNS text
LANGUAGE sql IMMUTABLE AS $$
    SELECT CASE WHEN customer_id ~ '^[a-z_]+-.+' THEN split_part(customer_id, '-', 1) END
$$;

-- `shopify-7012345678901` -> `7012345678901`; an id without a platform prefix is returned as it is.
CREATE FUNCTION nector.customer_id_without_platform(customer_id text) RETURNS text
LANGUAGE sql IMMUTABLE AS $$
    SELECT CASE WHEN customer_id ~ '^[a-z_]+-.+' THEN substr(customer_id, strpos(customer_id, '-') + 1)
                ELSE customer_id END
$$;

-- Mobile number to E.164 using the lead's three-letter country (Nector's `metadetail.country`), India
-- when unknown. Returns NULL for a number that does not fit the country's national length.
CREATE FUNCTION nector.to_e164(mobile text, country text) RETURNS text
LANGUAGE plpgsql IMMUTABLE AS $$
DECLARE
    digits text := regexp_replace(coalesce(mobile, ''), '\D', '', 'g');
    calling_code text;
    national_length int;
BEGIN
    IF digits = '' THEN
        RETURN NULL;
    END IF;
    IF btrim(mobile) LIKE '+%' THEN
        RETURN CASE WHEN digits ~ '^[1-9]\d{7,14}$' THEN '+' || digits END;
    END IF;
    SELECT c.code, c.digits INTO calling_code, national_length
    FROM (VALUES ('ind', '91', 10), ('usa', '1', 10), ('can', '1', 10), ('gbr', '44', 10),
                 ('are', '971', 9), ('sau', '966', 9), ('sgp', '65', 8), ('aus', '61', 9),
                 ('npl', '977', 10), ('bgd', '880', 10), ('lka', '94', 9), ('mys', '60', 9))
         AS c(iso3, code, digits)
    WHERE c.iso3 = lower(coalesce(nullif(btrim(to_e164.country), ''), 'ind'));
    IF calling_code IS NULL THEN
        RETURN NULL;
    END IF;
    IF length(digits) = national_length + 1 AND digits LIKE '0%' THEN
        digits := substr(digits, 2);
    ELSIF length(digits) = length(calling_code) + national_length AND digits LIKE calling_code || '%' THEN
        digits := substr(digits, length(calling_code) + 1);
    END IF;
    RETURN CASE WHEN length(digits) = national_length AND digits ~ '^[1-9]' THEN '+' || calling_code || digits END;
END $$;

------------------------------------------------------------------------------------------------
-- Bookkeeping.
------------------------------------------------------------------------------------------------

CREATE TABLE sync.export_file (
    export_file_id  bigserial PRIMARY KEY,
    path            text        NOT NULL,
    sha256          text        NOT NULL,
    workspace_id    text,
    export_id       text,
    entity          text,
    exported_at     timestamptz,
    currency_code   text,
    status          text        NOT NULL CHECK (status IN ('loaded', 'rejected')),
    reason          text,
    rows_in_file    bigint      NOT NULL DEFAULT 0,
    rows_valid      bigint      NOT NULL DEFAULT 0,
    rows_rejected   bigint      NOT NULL DEFAULT 0,
    rows_changed    bigint      NOT NULL DEFAULT 0,
    run_id          text,
    loaded_at       timestamptz NOT NULL DEFAULT now(),
    UNIQUE (path, sha256)
);
COMMENT ON TABLE sync.export_file IS 'Every export file a run read: loaded, or rejected whole with the reason. A file whose path and sha256 are here is not read again.';
COMMENT ON COLUMN sync.export_file.rows_valid IS 'Data records that passed every check.';
COMMENT ON COLUMN sync.export_file.rows_changed IS 'Staging rows inserted or updated; a record with an equal or older version changes nothing.';

CREATE TABLE sync.rejected_row (
    rejected_row_id bigserial PRIMARY KEY,
    export_file_id  bigint      NOT NULL REFERENCES sync.export_file,
    record_number   bigint      NOT NULL,
    column_name     text,
    value           text,
    reason          text        NOT NULL,
    record          jsonb       NOT NULL,
    rejected_at     timestamptz NOT NULL DEFAULT now()
);
COMMENT ON TABLE sync.rejected_row IS 'Records set aside by the loader, with the first check they failed; the rest of their file loaded.';
COMMENT ON COLUMN sync.rejected_row.record_number IS 'Data record number within the file, 1 = first record after the header.';
COMMENT ON COLUMN sync.rejected_row.record IS 'The record as read, column name to text.';

------------------------------------------------------------------------------------------------
-- Staging tables. Columns follow the export contract; every table keeps the file it came from.
------------------------------------------------------------------------------------------------

CREATE TABLE nector.tiers (
    workspace_id       text          NOT NULL,
    tier_name          text          NOT NULL,
    rank               integer       NOT NULL,
    criteria_type      text,
    threshold_value    numeric(14,2),
    bonus_factor       numeric(14,2),
    tier_expiry_months integer,
    created_at         timestamptz,
    updated_at         timestamptz   NOT NULL,
    _export_file_id    bigint        NOT NULL REFERENCES sync.export_file,
    _loaded_at         timestamptz   NOT NULL DEFAULT now(),
    PRIMARY KEY (workspace_id, tier_name)
);

CREATE TABLE nector.customers (
    workspace_id              text          NOT NULL,
    lead_id                   uuid          NOT NULL,
    customer_id               text,
    name                      text,
    email                     text,
    mobile                    text,
    country                   text,
    dob                       date,
    gender                    text,
    referral_code             text,
    referred_by_referral_code text,
    tier                      text,
    classification            text,
    coins_available           numeric(14,2),
    email_opt_in              boolean,
    sms_opt_in                boolean,
    whatsapp_opt_in           boolean,
    created_at                timestamptz   NOT NULL,
    updated_at                timestamptz   NOT NULL,
    platform                  text,
    platform_customer_id      text,
    mobile_e164               text,
    _export_file_id           bigint        NOT NULL REFERENCES sync.export_file,
    _loaded_at                timestamptz   NOT NULL DEFAULT now(),
    PRIMARY KEY (workspace_id, lead_id)
);
CREATE INDEX ON nector.customers (workspace_id, customer_id);

CREATE TABLE nector.wallet_transactions (
    workspace_id         text          NOT NULL,
    wallettransaction_id uuid          NOT NULL,
    lead_id              uuid          NOT NULL,
    customer_id          text,
    wallet_type          text,
    operation            text          NOT NULL,
    type                 text          NOT NULL,
    status               text,
    amount               numeric(14,2) NOT NULL,
    title                text,
    description          text,
    hash                 text,
    reference_order_id   text,
    coupon_id            uuid,
    expire_at            timestamptz,
    created_at           timestamptz   NOT NULL,
    updated_at           timestamptz   NOT NULL,
    _export_file_id      bigint        NOT NULL REFERENCES sync.export_file,
    _loaded_at           timestamptz   NOT NULL DEFAULT now(),
    PRIMARY KEY (workspace_id, wallettransaction_id)
);
CREATE INDEX ON nector.wallet_transactions (workspace_id, lead_id, created_at);

CREATE TABLE nector.coupons (
    workspace_id       text          NOT NULL,
    coupon_id          uuid          NOT NULL,
    lead_id            uuid          NOT NULL,
    offer_id           uuid,
    offer_name         text,
    code               text          NOT NULL,
    coupon_type        text,
    fiat_class         text,
    fiat_value         numeric(14,2),
    minimumcart_amount numeric(14,2),
    currency_code      text,
    coins_spent        numeric(14,2),
    source             text,
    status             text,
    used_order_id      text,
    used_at            timestamptz,
    expire_at          timestamptz,
    created_at         timestamptz   NOT NULL,
    updated_at         timestamptz   NOT NULL,
    _export_file_id    bigint        NOT NULL REFERENCES sync.export_file,
    _loaded_at         timestamptz   NOT NULL DEFAULT now(),
    PRIMARY KEY (workspace_id, coupon_id)
);
CREATE INDEX ON nector.coupons (workspace_id, lead_id);

CREATE TABLE nector.referrals (
    workspace_id          text          NOT NULL,
    referral_id           uuid          NOT NULL,
    referred_by_lead_id   uuid          NOT NULL,
    referred_to_lead_id   uuid,
    referral_code         text,
    referral_mode         text,
    status                text          NOT NULL,
    referrer_reward_type  text,
    referrer_reward_value numeric(14,2),
    completing_order_id   text,
    created_at            timestamptz   NOT NULL,
    completed_at          timestamptz,
    updated_at            timestamptz   NOT NULL,
    _export_file_id       bigint        NOT NULL REFERENCES sync.export_file,
    _loaded_at            timestamptz   NOT NULL DEFAULT now(),
    PRIMARY KEY (workspace_id, referral_id)
);
CREATE INDEX ON nector.referrals (workspace_id, referred_by_lead_id);

CREATE TABLE nector.reviews (
    workspace_id             text        NOT NULL,
    review_id                uuid        NOT NULL,
    lead_id                  uuid        NOT NULL,
    customer_id              text,
    rating                   integer     NOT NULL,
    title                    text,
    description              text,
    reference_product_source text,
    reference_product_id     text,
    reference_product_name   text,
    order_id                 text,
    is_verified              boolean,
    is_approved              boolean,
    created_at               timestamptz NOT NULL,
    updated_at               timestamptz NOT NULL,
    _export_file_id          bigint      NOT NULL REFERENCES sync.export_file,
    _loaded_at               timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (workspace_id, review_id)
);
CREATE INDEX ON nector.reviews (workspace_id, lead_id);

CREATE TABLE nector.tier_changes (
    workspace_id    text        NOT NULL,
    event_id        text        NOT NULL,
    lead_id         uuid        NOT NULL,
    customer_id     text,
    previous_tier   text,
    new_tier        text        NOT NULL,
    changed_at      timestamptz NOT NULL,
    tier_expires_at timestamptz,
    _export_file_id bigint      NOT NULL REFERENCES sync.export_file,
    _loaded_at      timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (workspace_id, event_id)
);
CREATE INDEX ON nector.tier_changes (workspace_id, lead_id, changed_at);

------------------------------------------------------------------------------------------------
-- Derived tables, rebuilt for each workspace by every run as of the end of its data interval.
------------------------------------------------------------------------------------------------

CREATE TABLE loyalty.test_account (
    workspace_id text NOT NULL,
    lead_id      uuid NOT NULL,
    matched_rule text NOT NULL,
    PRIMARY KEY (workspace_id, lead_id)
);
COMMENT ON TABLE loyalty.test_account IS 'Leads matching the configured test accounts (customer ids, emails, email domains). They are left out of profiles, segments and WebEngage.';

CREATE TABLE loyalty.credit_lot (
    workspace_id         text          NOT NULL,
    wallettransaction_id uuid          NOT NULL,
    lead_id              uuid          NOT NULL,
    earned_at            timestamptz   NOT NULL,
    expire_at            timestamptz,
    amount               numeric(14,2) NOT NULL,
    remaining            numeric(14,2) NOT NULL,
    as_of                timestamptz   NOT NULL,
    PRIMARY KEY (workspace_id, wallettransaction_id)
);
COMMENT ON TABLE loyalty.credit_lot IS 'Each successful credit with what remains of it as of `as_of`. Debits consume the lots that expire first (then the oldest), the way coin expiry works in Nector.';
COMMENT ON COLUMN loyalty.credit_lot.remaining IS 'Coins of this credit not yet spent, expired or reverted.';

CREATE TABLE loyalty.customer_profile (
    workspace_id                 text          NOT NULL,
    lead_id                      uuid          NOT NULL,
    customer_id                  text,
    user_id                      text,
    as_of                        timestamptz   NOT NULL,
    name                         text,
    email                        text,
    mobile_e164                  text,
    tier                         text,
    tier_rank                    integer,
    coin_balance                 numeric(14,2) NOT NULL,
    lifetime_coins_earned        numeric(14,2) NOT NULL,
    lifetime_coins_redeemed      numeric(14,2) NOT NULL,
    lifetime_coins_expired       numeric(14,2) NOT NULL,
    coins_expiring_soon          numeric(14,2) NOT NULL,
    next_coin_expiry_at          timestamptz,
    unused_coupon_count          integer       NOT NULL,
    next_coupon_expiry_at        timestamptz,
    completed_referral_count     integer       NOT NULL,
    review_count                 integer       NOT NULL,
    last_activity_at             timestamptz,
    last_tier_upgrade_at         timestamptz,
    earned_never_redeemed        boolean       NOT NULL,
    has_unused_coupon            boolean       NOT NULL,
    has_coins_expiring_soon      boolean       NOT NULL,
    completed_referral_recently  boolean       NOT NULL,
    reviewed_recently            boolean       NOT NULL,
    tier_upgraded_recently       boolean       NOT NULL,
    PRIMARY KEY (workspace_id, lead_id)
);
COMMENT ON TABLE loyalty.customer_profile IS 'One row per lead (test accounts left out) with loyalty totals and segment flags, computed from activity before `as_of`.';
COMMENT ON COLUMN loyalty.customer_profile.user_id IS 'WebEngage userId: the store customer id, by default without its platform prefix. NULL when the lead has no customer id.';
COMMENT ON COLUMN loyalty.customer_profile.as_of IS 'End of the data interval the profile was computed for.';
COMMENT ON COLUMN loyalty.customer_profile.lifetime_coins_redeemed IS 'Coins spent on rewards (`dr`/`redeem`), not expiry or reversals.';
COMMENT ON COLUMN loyalty.customer_profile.coins_expiring_soon IS 'Unspent coins whose credit expires within the configured window after `as_of`.';
COMMENT ON COLUMN loyalty.customer_profile.earned_never_redeemed IS 'Earned coins (`cr`/`reward`) and never redeemed any.';
COMMENT ON COLUMN loyalty.customer_profile.has_unused_coupon IS 'Holds a coupon issued before `as_of`, not used and not expired at `as_of`.';
COMMENT ON COLUMN loyalty.customer_profile.has_coins_expiring_soon IS 'coins_expiring_soon > 0.';
COMMENT ON COLUMN loyalty.customer_profile.completed_referral_recently IS 'A referral by this lead completed within the configured window before `as_of`.';
COMMENT ON COLUMN loyalty.customer_profile.reviewed_recently IS 'Wrote a review within the configured window before `as_of`.';
COMMENT ON COLUMN loyalty.customer_profile.tier_upgraded_recently IS 'Moved to a higher-ranked tier within the configured window before `as_of`.';

------------------------------------------------------------------------------------------------
-- WebEngage delivery.
------------------------------------------------------------------------------------------------

CREATE TABLE sync.webengage_outbox (
    item_key      text        PRIMARY KEY,
    sequence      bigint      GENERATED ALWAYS AS IDENTITY,
    kind          text        NOT NULL CHECK (kind IN ('event', 'user')),
    workspace_id  text        NOT NULL,
    lead_id       uuid,
    user_id       text,
    name          text        NOT NULL,
    occurred_at   timestamptz,
    payload       jsonb,
    payload_hash  text,
    status        text        NOT NULL CHECK (status IN ('pending', 'sent', 'skipped', 'superseded', 'dead')),
    reason        text,
    attempts      integer     NOT NULL DEFAULT 0,
    last_error    text,
    batch_id      text,
    queued_run_id text,
    queued_at     timestamptz NOT NULL DEFAULT now(),
    sent_run_id   text,
    sent_at       timestamptz
);
CREATE INDEX ON sync.webengage_outbox (kind, status, sequence);
CREATE INDEX ON sync.webengage_outbox (workspace_id, user_id) WHERE kind = 'user';
COMMENT ON TABLE sync.webengage_outbox IS 'Every event and user update meant for WebEngage, with its state. An item moves to `sent` in the same transaction that records the accepted batch.';
COMMENT ON COLUMN sync.webengage_outbox.item_key IS 'Deterministic key: events from their source row, users from the user id and the hash of the attributes.';
COMMENT ON COLUMN sync.webengage_outbox.sequence IS 'Queue order: items are sent oldest first.';
COMMENT ON COLUMN sync.webengage_outbox.status IS 'pending: to send; sent: accepted by WebEngage; skipped: never sent, see reason; superseded: a newer user update replaced it before it was sent; dead: rejected, see last_error.';

CREATE TABLE sync.webengage_user_state (
    workspace_id text        NOT NULL,
    user_id      text        NOT NULL,
    payload_hash text        NOT NULL,
    item_key     text        NOT NULL,
    sent_at      timestamptz NOT NULL,
    PRIMARY KEY (workspace_id, user_id)
);
COMMENT ON TABLE sync.webengage_user_state IS 'Hash of the attributes WebEngage last accepted per user; an unchanged user is not sent again.';

CREATE TABLE sync.run_report (
    run_id     text        PRIMARY KEY,
    as_of      timestamptz NOT NULL,
    summary    jsonb       NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now()
);
COMMENT ON TABLE sync.run_report IS 'Summary of each run: files and rows loaded and rejected, segment sizes, events and users sent.';
