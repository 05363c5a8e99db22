-- Physical line each rejected record starts on, for files whose quoted values contain line breaks
-- (otherwise the line is the record number + 1). The newlines expression counts the breaks in one record.
UPDATE sync.rejected_row AS rejected
SET line_number = lines.line_number
FROM (
    SELECT record_number,
           record_number + 1
               + coalesce(sum({newlines}) OVER (ORDER BY record_number ROWS BETWEEN UNBOUNDED PRECEDING AND 1 PRECEDING), 0)
               AS line_number
    FROM raw_records
) AS lines
WHERE rejected.export_file_id = {export_file_id}
  AND rejected.record_number = lines.record_number
