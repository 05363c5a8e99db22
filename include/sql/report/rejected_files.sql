-- Files this run rejected whole, with the reason.
SELECT path, reason
FROM sync.export_file
WHERE run_id = %(run_id)s AND status <> 'loaded'
ORDER BY path
