-- Delivery bookkeeping for WebEngage: batches in flight, failed items, dead letters and the type
-- each attribute was first sent with.

-------------------------------------------------------------------------------------------------
-- Outbox: a `failed` state for items whose batch kept failing (5xx, timeouts, 429) after every
-- retry. Failed items are sent again by the next delivery, like pending ones.

ALTER TABLE sync.webengage_outbox DROP CONSTRAINT webengage_outbox_status_check;
ALTER TABLE sync.webengage_outbox
    ADD CONSTRAINT webengage_outbox_status_check
    CHECK (status IN ('pending', 'failed', 'sent', 'skipped', 'superseded', 'dead'));
ALTER TABLE sync.webengage_outbox
    ADD COLUMN dead_at         timestamptz,
    ADD COLUMN redrive_count   integer NOT NULL DEFAULT 0,
    ADD COLUMN redriven_run_id text;
UPDATE sync.webengage_outbox SET dead_at = queued_at WHERE status = 'dead';

-- The sender reads the items still to send in queue order, per workspace and kind.
CREATE INDEX webengage_outbox_to_send
    ON sync.webengage_outbox (workspace_id, kind, sequence)
    WHERE status IN ('pending', 'failed');

COMMENT ON COLUMN sync.webengage_outbox.status IS 'pending: to send; failed: its batch failed after every retry, sent again by the next delivery (see attempts, last_error); sent: accepted by WebEngage; skipped: never sent, see reason; superseded: a newer user update replaced it before it was sent; dead: rejected before sending or by WebEngage, see reason and last_error.';
COMMENT ON COLUMN sync.webengage_outbox.redrive_count IS 'How many times a dead item was queued again by a run with the redrive_dead_letters param.';

-------------------------------------------------------------------------------------------------
-- Every bulk call, recorded in its own transaction before the HTTP request. An accepted batch is
-- completed in the transaction that marks its items sent, so a batch still `in_flight` when the
-- next delivery starts was cut off by a crash: WebEngage may or may not have accepted it.

CREATE TABLE sync.webengage_batch (
    batch_id          text        PRIMARY KEY,
    run_id            text        NOT NULL,
    workspace_id      text        NOT NULL,
    kind              text        NOT NULL CHECK (kind IN ('event', 'user')),
    item_keys         text[]      NOT NULL,
    status            text        NOT NULL CHECK (status IN ('in_flight', 'accepted', 'rejected', 'failed', 'interrupted')),
    sender            text,
    attempts          integer,
    rate_limited      integer     NOT NULL DEFAULT 0,
    uncertain_retries integer     NOT NULL DEFAULT 0,
    error             text,
    started_at        timestamptz NOT NULL DEFAULT now(),
    finished_at       timestamptz
);
CREATE INDEX ON sync.webengage_batch (run_id);
CREATE INDEX ON sync.webengage_batch (workspace_id) WHERE status IN ('in_flight', 'interrupted');
COMMENT ON TABLE sync.webengage_batch IS 'Every bulk call to WebEngage. in_flight: recorded, outcome not yet known; accepted: WebEngage answered 2xx and the items are sent; rejected: 400, split or dead-lettered; failed: 401/403/404 or retries exhausted; interrupted: found in_flight by a later delivery, so its items were sent again and may have arrived twice.';
COMMENT ON COLUMN sync.webengage_batch.rate_limited IS 'HTTP 429 responses to this call.';
COMMENT ON COLUMN sync.webengage_batch.uncertain_retries IS 'Retries after an attempt whose outcome is unknown (connection dropped or timed out after the request was sent). If WebEngage had accepted that attempt, the batch arrived twice.';

-------------------------------------------------------------------------------------------------
-- WebEngage fixes a custom attribute's type with the first value it receives. The type each
-- attribute was first queued with is recorded here and never changes.

CREATE TABLE sync.webengage_attribute_type (
    workspace_id   text        NOT NULL,
    item_kind      text        NOT NULL CHECK (item_kind IN ('user', 'event')),
    event_name     text        NOT NULL,
    attribute      text        NOT NULL,
    attribute_type text        NOT NULL CHECK (attribute_type IN ('string', 'number', 'boolean', 'date')),
    system         boolean     NOT NULL,
    first_run_id   text        NOT NULL,
    registered_at  timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (workspace_id, item_kind, event_name, attribute)
);
COMMENT ON TABLE sync.webengage_attribute_type IS 'Type of every user attribute and event attribute as first queued for a workspace''s WebEngage account; event_name is the name as sent (prefix included), empty for user attributes. A declared type that disagrees stops the queue stage.';

-------------------------------------------------------------------------------------------------

CREATE VIEW sync.webengage_dead_letter AS
SELECT item_key, kind, workspace_id, user_id, name, reason, last_error, attempts, batch_id, dead_at,
       redrive_count, queued_run_id, payload
FROM sync.webengage_outbox
WHERE status = 'dead';
COMMENT ON VIEW sync.webengage_dead_letter IS 'Items rejected before sending (reason) or by WebEngage (last_error holds its response). A run with the redrive_dead_letters param queues them again.';
