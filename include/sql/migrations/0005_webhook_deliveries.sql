-- Archived Nector webhook deliveries (webhook_events.jsonl), one row per delivery id.

CREATE TABLE sync.webhook_delivery (
    workspace_id   text        NOT NULL,
    delivery_id    text        NOT NULL,
    topic          text        NOT NULL,
    received_at    timestamptz,
    payload        jsonb       NOT NULL,
    status         text        NOT NULL CHECK (status IN ('mapped', 'unknown_topic')),
    export_file_id bigint      NOT NULL REFERENCES sync.export_file,
    line_number    bigint      NOT NULL,
    loaded_at      timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (workspace_id, delivery_id)
);
COMMENT ON TABLE sync.webhook_delivery IS 'Every Nector webhook delivery read from an archive file, kept raw. A delivery id seen again is skipped. Deliveries of topics without a mapping are kept with status unknown_topic.';
COMMENT ON COLUMN sync.webhook_delivery.status IS 'mapped: its payload was loaded into the staging table of its topic (rows failing checks are in sync.rejected_row); unknown_topic: no mapping for the topic, kept raw only.';

-- NULL for text that is not valid JSON. The exception block costs a subtransaction per call, which
-- is acceptable at webhook volumes.
CREATE FUNCTION nector.try_jsonb(value text) RETURNS jsonb
LANGUAGE plpgsql IMMUTABLE AS $$
BEGIN
    RETURN value::jsonb;
EXCEPTION WHEN invalid_text_representation THEN
    RETURN NULL;
END $$;

-- The delivery's receive time when it is an ISO 8601 timestamp or Unix seconds, else NULL.
CREATE FUNCTION nector.received_at(value text) RETURNS timestamptz
LANGUAGE sql STABLE AS $$
    SELECT CASE
        WHEN value ~ '^[0-9]{9,11}$' THEN to_timestamp(value::bigint)
        WHEN value ~ '^[1-9][0-9]{3}-(0[1-9]|1[0-2])-(0[1-9]|[12][0-9]|3[01])[T ]([01][0-9]|2[0-3]):[0-5][0-9](:[0-5][0-9](\.[0-9]{1,6})?)?([Zz]|[+-](0[0-9]|1[0-5])(:?[0-5][0-9])?)?$'
             AND nector.is_calendar_day(value) THEN value::timestamptz
    END
$$;
