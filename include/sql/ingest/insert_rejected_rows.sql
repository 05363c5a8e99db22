-- Sets aside every record that failed a check, with the column, its value as read and the reason.
-- The checks list gives (check number, column name, reason) for each check of this entity.
INSERT INTO sync.rejected_row (export_file_id, record_number, line_number, column_name, value, reason, record)
SELECT {export_file_id},
       checked.record_number,
       checked.record_number + {header_lines},
       checks.column_name,
       raw.record ->> checks.column_name,
       checks.reason,
       raw.record
FROM checked_records AS checked
JOIN (VALUES {checks}) AS checks (check_number, column_name, reason)
  ON checks.check_number = checked.failed_check
JOIN LATERAL (
    SELECT jsonb_strip_nulls(to_jsonb(r) - 'record_number') AS record
    FROM raw_records AS r
    WHERE r.record_number = checked.record_number
) AS raw ON true
