-- Records every well-formed delivery of the file not seen before, and returns the line numbers of the
-- new ones. Malformed lines are set aside by the caller; a repeated delivery id is skipped.
INSERT INTO sync.webhook_delivery (workspace_id, delivery_id, topic, received_at, payload, status, export_file_id, line_number)
SELECT DISTINCT ON (doc ->> 'delivery_id')
       %(workspace_id)s,
       doc ->> 'delivery_id',
       doc ->> 'topic',
       nector.received_at(doc ->> 'received_at'),
       doc -> 'payload',
       CASE WHEN doc ->> 'topic' = ANY (%(known_topics)s::text[]) THEN 'mapped' ELSE 'unknown_topic' END,
       %(export_file_id)s,
       line_number
FROM webhook_docs
WHERE problem IS NULL
ORDER BY doc ->> 'delivery_id', line_number
ON CONFLICT (workspace_id, delivery_id) DO NOTHING
RETURNING line_number, topic, status
