-- Bring the membership history of %(segments)s up to run day %(as_of_date)s from the members just built.
-- Undo first what an earlier run of the same day recorded, so a rerun records the day from the current
-- members: stays that began on the day go, stays that ended on the day are open again.
DELETE FROM loyalty.segment_membership_history
WHERE segment = ANY (%(segments)s::text[])
  AND entered_on = %(as_of_date)s;

UPDATE loyalty.segment_membership_history
SET left_on = NULL
WHERE segment = ANY (%(segments)s::text[])
  AND left_on = %(as_of_date)s;

-- Open stays of leads that are no longer members end on the run day.
UPDATE loyalty.segment_membership_history AS stay
SET left_on = %(as_of_date)s
WHERE stay.segment = ANY (%(segments)s::text[])
  AND stay.left_on IS NULL
  AND NOT EXISTS (SELECT 1 FROM loyalty.segment_member AS member
                  WHERE member.segment = stay.segment
                    AND member.lead_id = stay.lead_id
                    AND member.workspace_id = stay.workspace_id);

-- Members without an open stay enter on the run day.
INSERT INTO loyalty.segment_membership_history (segment, workspace_id, lead_id, entered_on, entry_details)
SELECT member.segment, member.workspace_id, member.lead_id, %(as_of_date)s, member.entry_details
FROM loyalty.segment_member AS member
WHERE member.segment = ANY (%(segments)s::text[])
  AND NOT EXISTS (SELECT 1 FROM loyalty.segment_membership_history AS stay
                  WHERE stay.segment = member.segment
                    AND stay.lead_id = member.lead_id
                    AND stay.workspace_id = member.workspace_id
                    AND stay.left_on IS NULL);
