-- Items this run delivered, and the items left in the outbox.
SELECT count(*) FILTER (WHERE kind = 'user' AND sent_run_id = %(run_id)s)  AS users_sent,
       count(*) FILTER (WHERE kind = 'event' AND sent_run_id = %(run_id)s) AS events_sent,
       count(DISTINCT batch_id) FILTER (WHERE sent_run_id = %(run_id)s)    AS batches,
       count(*) FILTER (WHERE status = 'pending')                          AS pending,
       count(*) FILTER (WHERE status = 'dead')                             AS dead
FROM sync.webengage_outbox
