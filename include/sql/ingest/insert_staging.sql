-- Fills an empty staging table: the same rows the upsert would write (the newest version of each key,
-- the later record on a tie), without the per-row conflict check, in key order.
INSERT INTO {table} ({columns}, _extra, _export_file_id)
SELECT DISTINCT ON ({key})
       {values}, _extra, {export_file_id}
FROM checked_records
WHERE failed_check IS NULL
ORDER BY {key}, {version} DESC, record_number DESC
