-- Entries into segment %(segment)s on run days %(oldest_entry_day)s to %(as_of_date)s whose entry event is not
-- in the outbox yet, with the WebEngage userId from the profile. An item is keyed by segment, lead and
-- entry day, so each entry is queued once. Test accounts are left out.
SELECT stay.workspace_id,
       stay.lead_id,
       stay.entered_on,
       stay.entry_details,
       %(item_key_prefix)s || stay.workspace_id || ':' || stay.lead_id || ':' || stay.entered_on AS item_key,
       profile.user_id,
       profile.lead_id IS NOT NULL AS has_profile
FROM loyalty.segment_membership_history AS stay
LEFT JOIN loyalty.customer_profile AS profile
       ON profile.workspace_id = stay.workspace_id AND profile.lead_id = stay.lead_id
WHERE stay.segment = %(segment)s
  AND stay.entered_on BETWEEN %(oldest_entry_day)s AND %(as_of_date)s
  AND NOT EXISTS (SELECT 1 FROM loyalty.test_account AS test
                  WHERE test.workspace_id = stay.workspace_id AND test.lead_id = stay.lead_id)
  AND NOT EXISTS (SELECT 1 FROM sync.webengage_outbox AS outbox
                  WHERE outbox.item_key = %(item_key_prefix)s || stay.workspace_id || ':' || stay.lead_id || ':'
                                          || stay.entered_on)
ORDER BY stay.entered_on, stay.workspace_id, stay.lead_id
