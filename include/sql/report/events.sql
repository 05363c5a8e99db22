-- Events this run queued, per event, state and reason.
SELECT name AS event, status, reason, count(*) AS items
FROM sync.webengage_outbox
WHERE kind = 'event' AND queued_run_id = %(run_id)s
GROUP BY name, status, reason
ORDER BY name, status, reason
