-- Export files this run read, per entity and outcome.
SELECT entity,
       status,
       count(*)                        AS files,
       coalesce(sum(rows_in_file), 0)::bigint  AS rows_in_file,
       coalesce(sum(rows_valid), 0)::bigint    AS rows_valid,
       coalesce(sum(rows_rejected), 0)::bigint AS rows_rejected,
       coalesce(sum(rows_changed), 0)::bigint  AS rows_changed
FROM sync.export_file
WHERE run_id = %(run_id)s
GROUP BY entity, status
ORDER BY entity, status
