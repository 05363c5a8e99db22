-- Upserts the valid records into the staging table by natural key. Within the file the newest version
-- of a key wins (the later record on a tie); against the table, only a strictly newer version
-- replaces a row, so loading the same file again changes nothing.
INSERT INTO {table} AS target ({columns}, _extra, _export_file_id)
SELECT DISTINCT ON ({key})
       {values}, _extra, {export_file_id}
FROM checked_records
WHERE failed_check IS NULL
ORDER BY {key}, {version} DESC, record_number DESC
ON CONFLICT ({key}) DO UPDATE
SET {assignments}, _extra = EXCLUDED._extra, _export_file_id = EXCLUDED._export_file_id, _loaded_at = now()
WHERE target.{version} < EXCLUDED.{version}
