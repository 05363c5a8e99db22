-- Items this run delivered, the items left in the outbox, and this run's bulk calls. resent_batches are
-- batches a crashed delivery left in flight whose items this run sent again: each may have arrived twice.
WITH items AS (
    SELECT count(*) FILTER (WHERE kind = 'user' AND sent_run_id = %(run_id)s)  AS users_sent,
           count(*) FILTER (WHERE kind = 'event' AND sent_run_id = %(run_id)s) AS events_sent,
           count(*) FILTER (WHERE status = 'pending')                          AS pending,
           count(*) FILTER (WHERE status = 'failed')                           AS failed,
           count(*) FILTER (WHERE status = 'dead')                             AS dead,
           count(*) FILTER (WHERE status = 'dead' AND dead_at IS NOT NULL
                                  AND (queued_run_id = %(run_id)s OR batch_id IN (
                                      SELECT batch_id FROM sync.webengage_batch WHERE run_id = %(run_id)s))) AS dead_this_run,
           count(*) FILTER (WHERE redriven_run_id = %(run_id)s)                AS redriven
    FROM sync.webengage_outbox
), calls AS (
    SELECT count(*) FILTER (WHERE status = 'accepted')                 AS batches,
           count(*) FILTER (WHERE status = 'rejected')                 AS rejected_calls,
           count(*) FILTER (WHERE status = 'failed')                   AS failed_calls,
           coalesce(sum(greatest(attempts - 1, 0)), 0)::bigint         AS retries,
           coalesce(sum(rate_limited), 0)::bigint                      AS rate_limited,
           coalesce(sum(uncertain_retries), 0)::bigint                 AS uncertain_retries
    FROM sync.webengage_batch
    WHERE run_id = %(run_id)s
), resent AS (
    SELECT count(*) AS resent_batches
    FROM sync.webengage_batch AS batch
    WHERE batch.status = 'interrupted'
      AND EXISTS (SELECT 1 FROM sync.webengage_outbox AS outbox
                  WHERE outbox.item_key = ANY (batch.item_keys) AND outbox.sent_run_id = %(run_id)s)
)
SELECT * FROM items, calls, resent
