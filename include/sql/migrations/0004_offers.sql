-- The reward catalogue (offers.csv); coupons name the offer they came from by offer_id.
CREATE TABLE nector.offers (
    workspace_id    text          NOT NULL,
    offer_id        uuid          NOT NULL,
    name            text          NOT NULL,
    description     text,
    rule_type       text,
    coin_amount     numeric(14,2),
    fiat_class      text,
    fiat_range_min  numeric(14,2),
    fiat_range_max  numeric(14,2),
    is_multiplier   boolean,
    tier            text,
    category        text,
    brand           text,
    expire          timestamptz,
    is_active       boolean,
    created_at      timestamptz   NOT NULL,
    updated_at      timestamptz   NOT NULL,
    _export_file_id bigint        NOT NULL,
    _loaded_at      timestamptz   NOT NULL DEFAULT now(),
    _extra          jsonb,
    PRIMARY KEY (workspace_id, offer_id)
);
COMMENT ON TABLE nector.offers IS 'The reward catalogue: what each coupon gives and what it costs in coins.';
CREATE INDEX ON nector.coupons (workspace_id, offer_id);
