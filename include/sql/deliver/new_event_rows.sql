-- Rows of one event query (a file under deliver/events, put in place of event_query) that are not in the outbox yet,
-- or are dead there when %(redrive)s is true, with the WebEngage userId from the profile. Test accounts are left
-- out; activity at or after %(as_of)s waits for the run whose interval covers it.
SELECT event.*,
       %(item_key_prefix)s || event.workspace_id || ':' || event.source_id AS item_key,
       profile.user_id,
       profile.lead_id IS NOT NULL AS has_profile
FROM ({event_query}) AS event
LEFT JOIN loyalty.customer_profile AS profile
       ON profile.workspace_id = event.workspace_id AND profile.lead_id = event.lead_id
WHERE event.occurred_at < %(as_of)s
  AND NOT EXISTS (SELECT 1 FROM loyalty.test_account AS test
                  WHERE test.workspace_id = event.workspace_id AND test.lead_id = event.lead_id)
  AND NOT EXISTS (SELECT 1 FROM sync.webengage_outbox AS outbox
                  WHERE outbox.item_key = %(item_key_prefix)s || event.workspace_id || ':' || event.source_id
                    AND NOT (%(redrive)s AND outbox.status = 'dead'))
ORDER BY event.occurred_at, event.source_id
