-- Size, entries and exits of %(segments)s on run day %(as_of_date)s, per workspace with a profile. A rerun
-- of the day replaces its rows.
WITH segment AS (
    SELECT *
    FROM unnest(%(segments)s::text[], %(parameters)s::jsonb[], %(definitions)s::text[])
         AS segment (segment, parameters, definition_sha256)
),
workspace AS (
    SELECT DISTINCT workspace_id FROM loyalty.customer_profile
),
members AS (
    SELECT segment, workspace_id, count(*) AS members
    FROM loyalty.segment_member
    WHERE segment = ANY (%(segments)s::text[])
    GROUP BY segment, workspace_id
),
entered AS (
    SELECT segment, workspace_id, count(*) AS entered
    FROM loyalty.segment_membership_history
    WHERE entered_on = %(as_of_date)s
    GROUP BY segment, workspace_id
),
exited AS (
    SELECT segment, workspace_id, count(*) AS exited
    FROM loyalty.segment_membership_history
    WHERE left_on = %(as_of_date)s
    GROUP BY segment, workspace_id
)
INSERT INTO loyalty.segment_day (segment, workspace_id, as_of_date, as_of, members, entered, exited, parameters,
                                 definition_sha256)
SELECT segment.segment,
       workspace.workspace_id,
       %(as_of_date)s,
       %(as_of)s,
       coalesce(members.members, 0),
       coalesce(entered.entered, 0),
       coalesce(exited.exited, 0),
       segment.parameters,
       segment.definition_sha256
FROM segment
CROSS JOIN workspace
LEFT JOIN members USING (segment, workspace_id)
LEFT JOIN entered USING (segment, workspace_id)
LEFT JOIN exited USING (segment, workspace_id)
ON CONFLICT (segment, workspace_id, as_of_date) DO UPDATE
SET as_of = EXCLUDED.as_of,
    members = EXCLUDED.members,
    entered = EXCLUDED.entered,
    exited = EXCLUDED.exited,
    parameters = EXCLUDED.parameters,
    definition_sha256 = EXCLUDED.definition_sha256,
    computed_at = now();
